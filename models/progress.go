package models

import (
	"sync"
	"time"

	"gorm.io/gorm"
)

// ProgressReport is one line of a task's progress, as Pulp's ProgressReportResponse shows it:
// what is being done (message, code), its state, and how far it got (done of total).
type ProgressReport struct {
	Message string  `json:"message"`
	Code    string  `json:"code"`
	State   string  `json:"state"`
	Total   *int64  `json:"total"`
	Done    int64   `json:"done"`
	Suffix  *string `json:"suffix"`
}

// Progress keeps the progress reports of one running task and writes them to its row, at most
// every progressInterval while counts change and at once when a report starts or ends, so that
// clients polling the task see them move. It is safe for concurrent use.
type Progress struct {
	db     *gorm.DB
	taskID string

	writeMu sync.Mutex // one write at a time, so an older snapshot never overwrites a newer one
	mu      sync.Mutex
	reports []*ProgressReport
	written time.Time
	dirty   bool
}

// progressInterval bounds how often count changes are written to the task row.
const progressInterval = 200 * time.Millisecond

// NewProgress returns the progress of task taskID, written through db.
func NewProgress(db *gorm.DB, taskID string) *Progress {
	return &Progress{db: db, taskID: taskID}
}

// ProgressBar is one report of a Progress.
type ProgressBar struct {
	p *Progress
	r *ProgressReport
}

// Bar starts a running report; total is nil when the count is not known in advance.
func (p *Progress) Bar(message, code string, total *int64) *ProgressBar {
	p.mu.Lock()
	r := &ProgressReport{Message: message, Code: code, State: TaskRunning, Total: total}
	p.reports = append(p.reports, r)
	p.mu.Unlock()
	p.flush(true)
	return &ProgressBar{p: p, r: r}
}

// Add adds n to the bar's count.
func (b *ProgressBar) Add(n int64) {
	b.p.mu.Lock()
	b.r.Done += n
	b.p.dirty = true
	b.p.mu.Unlock()
	b.p.flush(false)
}

// Finish marks the bar completed.
func (b *ProgressBar) Finish() { b.end(TaskCompleted) }

// FinishAt sets the bar's count to done and marks it completed.
func (b *ProgressBar) FinishAt(done int64) {
	b.p.mu.Lock()
	b.r.Done = done
	b.p.mu.Unlock()
	b.end(TaskCompleted)
}

func (b *ProgressBar) end(state string) {
	b.p.mu.Lock()
	b.r.State = state
	b.p.mu.Unlock()
	b.p.flush(true)
}

// Fail marks every report still running failed, as Pulp does when the task fails.
func (p *Progress) Fail() {
	p.mu.Lock()
	for _, r := range p.reports {
		if r.State == TaskRunning {
			r.State = TaskFailed
		}
	}
	p.mu.Unlock()
	p.flush(true)
}

// Reports returns a copy of the reports, in the order they started.
func (p *Progress) Reports() []ProgressReport {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]ProgressReport, len(p.reports))
	for i, r := range p.reports {
		out[i] = *r
	}
	return out
}

// flush writes the reports to the task row when now is set, or when counts changed and the
// last write is older than progressInterval. A failed write is retried by the next flush.
func (p *Progress) flush(now bool) {
	// A routine flush skips while another write runs (the counts stay dirty for the next one):
	// the downloads that report progress never queue behind a database write.
	if now {
		p.writeMu.Lock()
	} else if !p.writeMu.TryLock() {
		return
	}
	defer p.writeMu.Unlock()
	p.mu.Lock()
	if !now && (!p.dirty || time.Since(p.written) < progressInterval) {
		p.mu.Unlock()
		return
	}
	reports := make([]ProgressReport, len(p.reports))
	for i, r := range p.reports {
		reports[i] = *r
	}
	p.written, p.dirty = time.Now(), false
	p.mu.Unlock()
	if err := p.db.Model(&Task{}).Where("id = ?", p.taskID).
		Update("progress_reports", MustJSON(reports)).Error; err != nil {
		p.mu.Lock()
		p.dirty = true
		p.mu.Unlock()
	}
}
