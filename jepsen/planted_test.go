package jepsen_test

import (
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/graft-cluster/graft/jepsen"
	"github.com/graft-cluster/graft/jepsen/nemesis"
	"github.com/graft-cluster/graft/jepsen/workload"
)

// Every catalog entry names a row the suite can run and a build tag that
// the source plants (a file built with the tag and one built without it).
func TestPlantedBugs_catalog(t *testing.T) {
	checkers := []string{"linearizable", "chain", "pages", "bank", "ryw", "bucket", "crashes", "quarantine", "page-reads", "sqlite-bank", "retained"}
	builds := map[string]bool{} // build constraint lines of the module's Go files
	err := filepath.WalkDir("..", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == "bin" || strings.HasPrefix(d.Name(), ".")) && path != ".." {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") {
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if line, _, _ := strings.Cut(string(b), "\n"); strings.HasPrefix(line, "//go:build ") {
			builds[strings.TrimPrefix(line, "//go:build ")] = true
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range jepsen.PlantedBugs {
		if !strings.HasPrefix(b.Tag, "graft_bug_") || b.Class == "" || b.What == "" || b.TimeLimit <= 0 || (b.Fast && b.FastTimeLimit <= 0) {
			t.Errorf("%s: incomplete entry %+v", b.Tag, b)
		}
		if !builds[b.Tag] || !builds["!"+b.Tag] {
			t.Errorf("%s: no pair of files built with and without the tag", b.Tag)
		}
		if _, err := workload.New(b.Workload, 1); err != nil {
			t.Errorf("%s: %v", b.Tag, err)
		}
		if _, err := nemesis.Parse(strings.Join(b.Nemeses, ",")); err != nil {
			t.Errorf("%s: %v", b.Tag, err)
		}
		if !slices.Contains(checkers, b.Checker) {
			t.Errorf("%s: unknown checker %q", b.Tag, b.Checker)
		}
	}
}
