//go:build !js && !wasip1

package client

import (
	"github.com/graft-cluster/graft/client/boltstore"
	"github.com/graft-cluster/graft/client/store"
)

func openDir(dir string) (store.Store, error) { return boltstore.Open(dir) }
