// Package fill is the fill engine: it fetches a blob once however many clients ask for it,
// writes it to a staging file while hashing it, commits it to storage only once its digest
// (and announced size) is verified, and lets any number of readers follow the growing file
// meanwhile. The pull-through cache fills blobs from upstreams with it.
//
// Three things share the word staging, and each has one name here:
//
//   - the staging root, one directory shared by the content processes of one storage (the
//     content app puts it at <storage>/.fills);
//   - a Staging, one process's own directory below the root, live while the process holds its
//     lock; OpenStaging removes the directories of dead processes, Close removes its own;
//   - a staging file, the bytes of one fill in progress, in its process's Staging until the
//     commit moves it into storage (or the fill fails and removes it).
//
// Single flight: Fills runs at most one fill per digest in a process (Start, Claim), and a
// Locker extends that to processes that share a storage. A fill runs detached from the client
// that started it (context.WithoutCancel plus a timeout), so it goes on when that client
// leaves.
//
// Resumes: when the upstream body breaks mid-blob (a cut connection, an idle timeout), the
// fill reopens its Source at the number of bytes staged (an upstream client sends Range:
// bytes=<staged>-) and goes on appending and hashing where it stopped, up to a budget of
// resumes with a doubling backoff (WithResumes), for the errors a retry can cure
// (WithRetryable); readers just see the file grow on. An upstream that ignores the Range and
// sends the whole blob again is skipped to the offset by the Source: the staged bytes are not
// compared with the new ones, but the digest is computed over exactly the bytes staged, so
// whatever an upstream does, nothing is committed under a digest the fill did not compute. An
// answer from another offset (a wrong Content-Range) fails the fill.
//
// Verification belongs to the reader (as go-containerregistry's internal/verify owns its
// check): a Fill's reader hands out every byte the fill has written except the blob's last
// one, which it holds back until the digest is verified, and ends with the fill's error
// instead of io.EOF when the fill fails. A consumer that stops at the blob's announced length
// therefore never gets a complete body of a blob that failed, and can copy plainly.
//
// Object storage: when the driver is a storage.Streamer, the staging file is also uploaded
// while it grows (upload.go), and the commit sends its tail and completes the upload once the
// digest is verified; a failed fill cancels (aborts) the upload. Readers follow the staging
// file as with any driver.
package fill
