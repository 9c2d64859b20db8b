package store_test

import (
	"testing"

	"github.com/graft-cluster/graft/client/store"
	"github.com/graft-cluster/graft/client/store/storetest"
)

func TestMem_Suite(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store { return store.NewMem() })
}
