//go:build js || wasip1

package client

import "github.com/graft-cluster/graft/client/store"

func openDir(string) (store.Store, error) { return nil, ErrNoStoreDir }
