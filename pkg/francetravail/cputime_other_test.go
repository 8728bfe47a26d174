//go:build !unix

package francetravail_test

import "time"

// cpuTime is unknown here: the figures print 0.
func cpuTime() time.Duration { return 0 }
