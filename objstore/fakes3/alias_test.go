package fakes3_test

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"testing"
)

// A GET must serve the bytes that were stored even when the database
// grows while the response is still being sent: gofakes3's bolt backend
// decodes objects with mgo's bson, whose []byte fields alias bbolt's
// memory map, and hands them to the response after the read transaction
// ended. A slow reader (the consistency suite's slow object-store link)
// then reads through a mapping that bbolt has replaced: the server died
// with SIGBUS (register s3-reset seed 1).
func TestServe_SlowGetWhileGrowing(t *testing.T) {
	t.Parallel()
	srv := serve(t, t.TempDir())
	st := open(t, srv.URL(""))
	want := bytes.Repeat([]byte("0123456789abcdef"), 512<<10) // 8 MiB: more than socket buffers hold
	if err := st.Put(t.Context(), "big", want); err != nil {
		t.Fatal(err)
	}
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, srv.Endpoint()+"/"+bucket+"/big", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	head := make([]byte, 4<<10)
	if _, err := io.ReadFull(resp.Body, head); err != nil {
		t.Fatal(err)
	}
	// With the response stalled, grow the database several times over
	// (each time past its memory map) and free the object's pages.
	if err := st.Delete(t.Context(), "big"); err != nil {
		t.Fatal(err)
	}
	filler := bytes.Repeat([]byte{0xee}, 4<<20)
	for i := range 24 {
		if err := st.Put(t.Context(), fmt.Sprintf("grow/%d", i), filler); err != nil {
			t.Fatal(err)
		}
	}
	rest, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("read the rest of the response: %v", err)
	}
	if got := append(head, rest...); !bytes.Equal(got, want) {
		t.Fatalf("GET served %d bytes that differ from the %d stored", len(got), len(want))
	}
}
