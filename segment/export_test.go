package segment

// Internal encoders exported to the black-box tests, so that fuzz targets
// can check that what decodes re-encodes identically.
var (
	AppendFooter = appendFooter
	AppendIndex  = appendIndex
)

// SetMaxCount lowers the most page versions a Builder accepts, and returns a
// function restoring it. Tests using it must not run in parallel.
func SetMaxCount(n int) (restore func()) {
	old := maxCount
	maxCount = n
	return func() { maxCount = old }
}
