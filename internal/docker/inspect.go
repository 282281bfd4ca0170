package docker

import (
	"context"

	"github.com/docker/docker/api/types/container"
)

// Inspect returns the daemon's full description of a container (for tailor audit).
func (c *Client) Inspect(ctx context.Context, nameOrID string) (container.InspectResponse, error) {
	return c.inspect(ctx, nameOrID)
}

// ContainerIDs lists the IDs of every container, running or not, in the daemon's
// order.
func (c *Client) ContainerIDs(ctx context.Context) ([]string, error) {
	list, err := c.api.ContainerList(ctx, container.ListOptions{All: true})
	if err != nil {
		return nil, c.apiError("listing containers", err)
	}
	ids := make([]string, 0, len(list))
	for _, l := range list {
		ids = append(ids, l.ID)
	}
	return ids, nil
}
