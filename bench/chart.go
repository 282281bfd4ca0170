package main

import (
	"bytes"
	"fmt"
	"html"
)

// bar is one configuration's overhead in percent of its untraced baseline.
type bar struct {
	label   string
	percent float64
}

// chartMax clips the scale: strace's thousands of percent would flatten every other
// bar, so longer bars are cut at the edge and carry their figure.
const chartMax = 100.0

// chart draws bars as a horizontal bar chart in SVG.
func chart(bars []bar) []byte {
	const (
		labelW, barW, rowH, top = 330, 400, 24, 40
	)
	w, h := labelW+barW+90, top+rowH*len(bars)+20
	var b bytes.Buffer
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" font-family="sans-serif" font-size="12">`+"\n", w, h)
	fmt.Fprintf(&b, `<text x="10" y="20" font-size="14">tailor overhead per configuration (%% of the untraced baseline; make bench)</text>`+"\n")
	for i, br := range bars {
		y := top + i*rowH
		p := br.percent
		if p < 0 {
			p = 0
		}
		clipped := p > chartMax
		if clipped {
			p = chartMax
		}
		color := "#4a7ebb"
		if clipped {
			color = "#bb4a4a"
		}
		fmt.Fprintf(&b, `<text x="%d" y="%d" text-anchor="end">%s</text>`+"\n", labelW-8, y+15, html.EscapeString(br.label))
		fmt.Fprintf(&b, `<rect x="%d" y="%d" width="%.1f" height="%d" fill="%s"/>`+"\n", labelW, y+3, p/chartMax*barW, rowH-6, color)
		fmt.Fprintf(&b, `<text x="%.1f" y="%d">%.1f%%</text>`+"\n", float64(labelW)+p/chartMax*barW+5, y+15, br.percent)
	}
	b.WriteString("</svg>\n")
	return b.Bytes()
}
