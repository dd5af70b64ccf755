package notify

// The bounds, for the external tests.
const (
	MaxNoticeSummaryBytes = maxNoticeSummaryBytes
	MaxMapKeys            = maxMapKeys
	MaxListItems          = maxListItems
)
