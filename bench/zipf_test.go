package bench

import (
	"errors"
	"math"
	"math/rand/v2"
	"testing"
)

func TestNewZipf_Invalid(t *testing.T) {
	for _, c := range []struct {
		n     uint64
		theta float64
	}{{0, 0.99}, {10, 0}, {10, 1}, {10, 1.2}, {10, math.NaN()}} {
		if _, err := NewZipf(c.n, c.theta); !errors.Is(err, ErrInvalidArgument) {
			t.Errorf("NewZipf(%d, %v) = %v, want ErrInvalidArgument", c.n, c.theta, err)
		}
	}
}

// TestZipf_Next checks the drawn frequencies against the exact
// distribution: the hottest items one by one, the mass of the top 1% and
// 10%, and that every draw is in range.
func TestZipf_Next(t *testing.T) {
	const n, draws = 10000, 400000
	z, err := NewZipf(n, 0.99)
	if err != nil {
		t.Fatal(err)
	}
	r := rand.New(rand.NewPCG(1, 2))
	counts := make([]int, n)
	for range draws {
		i := z.Next(r)
		if i >= n {
			t.Fatalf("draw %d out of [0, %d)", i, n)
		}
		counts[i]++
	}
	// Items 0 and 1 are drawn exactly (YCSB approximates the rest): within
	// 5 standard deviations of their expected counts.
	for i := range uint64(2) {
		p := z.Prob(i)
		want := p * draws
		sd := math.Sqrt(draws * p * (1 - p))
		if got := float64(counts[i]); math.Abs(got-want) > 5*sd {
			t.Errorf("item %d: %v draws, want %.0f ± %.0f", i, got, want, 5*sd)
		}
	}
	// Above item 1 the draw is YCSB's approximation: the mass of the top 1%
	// and 10% of items within 2 points of the exact mass.
	for _, top := range []int{n / 100, n / 10} {
		var got, want float64
		for i := range top {
			got += float64(counts[i]) / draws
			want += z.Prob(uint64(i))
		}
		if math.Abs(got-want) > 0.02 {
			t.Errorf("top %d items: mass %.3f, want %.3f", top, got, want)
		}
		if testing.Verbose() {
			t.Logf("top %d items: mass %.3f, exact %.3f", top, got, want)
		}
	}
	// Skewed: item 0 is drawn far more often than item n/2.
	if counts[0] < 100*max(counts[n/2], 1) {
		t.Errorf("item 0 drawn %d times, item %d %d times: not skewed", counts[0], n/2, counts[n/2])
	}
}

func TestZipf_NextSeeded(t *testing.T) {
	z, err := NewZipf(1000, 0.99)
	if err != nil {
		t.Fatal(err)
	}
	a, b := rand.New(rand.NewPCG(7, 7)), rand.New(rand.NewPCG(7, 7))
	for i := range 1000 {
		if x, y := z.Next(a), z.Next(b); x != y {
			t.Fatalf("draw %d: %d and %d from the same seed", i, x, y)
		}
	}
	one, err := NewZipf(1, 0.5)
	if err != nil {
		t.Fatal(err)
	}
	for range 100 {
		if i := one.Next(a); i != 0 {
			t.Fatalf("one item: drew %d", i)
		}
	}
}
