package s3

import "time"

// SetReadIdle sets how long a read of d waits for the store's next bytes (tests).
func SetReadIdle(d *Driver, idle time.Duration) { d.readIdle = idle }
