package shape

import "fmt"

// FormatSeconds writes seconds for people: "0.35 ms", "42 ms", "1.20 s".
func FormatSeconds(s float64) string {
	switch {
	case s < 0.001:
		return fmt.Sprintf("%.2f ms", s*1000)
	case s < 1:
		return fmt.Sprintf("%.0f ms", s*1000)
	default:
		return fmt.Sprintf("%.2f s", s)
	}
}
