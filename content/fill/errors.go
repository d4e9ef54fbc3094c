package fill

import "fmt"

// DigestMismatchError reports upstream bytes whose digest is not the one that was asked for.
type DigestMismatchError struct {
	Digest string // wanted
	Got    string // digest of the bytes upstream sent
}

// Error names the wanted digest and the one upstream delivered.
func (e *DigestMismatchError) Error() string {
	return fmt.Sprintf("blob %s: upstream sent content with digest %s", e.Digest, e.Got)
}

// SizeMismatchError reports upstream bytes whose length differs from the size upstream
// announced. When upstream sent too much, Got counts only up to the first extra bytes.
type SizeMismatchError struct {
	Digest string
	Want   int64
	Got    int64
}

// Error names the announced and delivered sizes.
func (e *SizeMismatchError) Error() string {
	return fmt.Sprintf("blob %s: upstream announced %d bytes and sent %d", e.Digest, e.Want, e.Got)
}
