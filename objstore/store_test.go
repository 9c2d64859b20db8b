package objstore_test

import (
	"testing"

	"github.com/graft-cluster/graft/objstore"
	"github.com/graft-cluster/graft/objstore/s3test"
	"github.com/graft-cluster/graft/objstore/storetest"
)

func open(t *testing.T, rawURL string, opts ...objstore.Option) objstore.Store {
	t.Helper()
	s, err := objstore.Open(t.Context(), rawURL, opts...)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func TestMemory_Conformance(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T) objstore.Store { return open(t, "mem://") })
}

func TestFile_Conformance(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T) objstore.Store {
		return open(t, "file://"+t.TempDir()+"/store/prefix")
	})
}

func TestS3_Conformance(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T) objstore.Store { return open(t, s3test.URL(t)) })
}
