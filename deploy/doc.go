// Package deploy holds the deployment recipes of graft, not code: a
// systemd unit (graft-node.service), its environment file and a node
// config example, and a container recipe (Containerfile); README.md says
// how to use them. Its test checks the unit with systemd-analyze.
package deploy
