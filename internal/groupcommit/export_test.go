package groupcommit

import "time"

// SetCloseGrace sets how long Close lets w's batch in progress finish before cancelling it.
func SetCloseGrace(w *Writer, d time.Duration) { w.closeGrace = d }
