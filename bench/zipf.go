package bench

import (
	"fmt"
	"math"
	"math/rand/v2"
)

// Zipf draws item numbers in [0, n) with the YCSB zipfian distribution
// (Gray et al., "Quickly generating billion-record synthetic databases"):
// item i has probability (1/(i+1)^theta) / zeta(n, theta), so item 0 is the
// hottest. Unlike math/rand/v2's Zipf it accepts theta < 1; YCSB's default
// skew is 0.99. It holds only constants, so one Zipf serves any number of
// goroutines, each drawing with its own *rand.Rand.
type Zipf struct {
	n     uint64
	theta float64
	zetaN float64 // zeta(n, theta) = sum over i in [1, n] of 1/i^theta
	alpha float64 // 1/(1-theta)
	eta   float64
	half  float64 // 1 + 0.5^theta: the cumulative weight of items 0 and 1
}

// NewZipf returns the generator for n items (n >= 1) with skew theta in
// (0, 1). Computing zeta(n) is O(n), once.
func NewZipf(n uint64, theta float64) (*Zipf, error) {
	if n < 1 || !(theta > 0 && theta < 1) {
		return nil, fmt.Errorf("zipf: n %d, theta %v (want n >= 1, 0 < theta < 1): %w", n, theta, ErrInvalidArgument)
	}
	z := &Zipf{n: n, theta: theta, alpha: 1 / (1 - theta), half: 1 + math.Pow(0.5, theta)}
	z.zetaN = zeta(n, theta)
	zeta2 := zeta(min(n, 2), theta)
	z.eta = (1 - math.Pow(2/float64(n), 1-theta)) / (1 - zeta2/z.zetaN)
	return z, nil
}

// zeta returns the sum over i in [1, n] of 1/i^theta.
func zeta(n uint64, theta float64) float64 {
	var s float64
	for i := uint64(1); i <= n; i++ {
		s += 1 / math.Pow(float64(i), theta)
	}
	return s
}

// Prob returns item i's exact probability.
func (z *Zipf) Prob(i uint64) float64 {
	if i >= z.n {
		return 0
	}
	return 1 / math.Pow(float64(i+1), z.theta) / z.zetaN
}

// Next draws one item with r.
func (z *Zipf) Next(r *rand.Rand) uint64 {
	u := r.Float64()
	uz := u * z.zetaN
	switch {
	case uz < 1 || z.n == 1:
		return 0
	case uz < z.half:
		return 1
	}
	i := uint64(float64(z.n) * math.Pow(z.eta*u-z.eta+1, z.alpha))
	return min(i, z.n-1)
}
