package bench

import (
	"math"
	"slices"
)

// histogram is a Prometheus histogram's cumulative counts by bucket upper bound (+Inf the
// total), as a server's /metrics gives it.
type histogram map[float64]float64

// since returns the observations made between earlier and h.
func (h histogram) since(earlier histogram) histogram {
	d := make(histogram, len(h))
	for b, n := range h {
		d[b] = n - earlier[b]
	}
	return d
}

// quantile estimates the q-quantile (0 < q < 1) as Prometheus's histogram_quantile does: the
// bucket holding it is found, and the value interpolated linearly within it (from 0 for the
// first). One in the +Inf bucket is the highest finite bound. NaN when h holds nothing.
func (h histogram) quantile(q float64) float64 {
	bounds := make([]float64, 0, len(h))
	for b := range h {
		bounds = append(bounds, b)
	}
	slices.Sort(bounds)
	if len(bounds) == 0 || h[bounds[len(bounds)-1]] <= 0 {
		return math.NaN()
	}
	rank := q * h[bounds[len(bounds)-1]]
	lower, below := 0.0, 0.0
	for _, b := range bounds {
		n := h[b]
		if n >= rank {
			if math.IsInf(b, 1) {
				return lower
			}
			if n == below {
				return b
			}
			return lower + (b-lower)*(rank-below)/(n-below)
		}
		lower, below = b, n
	}
	return lower
}
