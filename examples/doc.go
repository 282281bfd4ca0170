// Package examples holds runnable examples of tailor's whole loop on real servers
// (nginx/run.sh, redis/run.sh, shared lib.sh) and the end-to-end test that runs them.
// See docs/examples.md.
package examples
