package content

import (
	"context"

	"github.com/pulpgo/pulpgo/content/pullthrough"
	"github.com/pulpgo/pulpgo/models"
	"github.com/pulpgo/pulpgo/tasks"
)

// taskRecorder records pulled content through download_image_data tasks, reserved on the
// repository as in Pulp, so that clients can wait for them and pulls never do.
type taskRecorder struct {
	tasks Dispatcher
}

var _ pullthrough.Recorder = taskRecorder{}

// Record dispatches one download_image_data task for items.
func (r taskRecorder) Record(ctx context.Context, repositoryID string, items []pullthrough.RecordItem) error {
	args := tasks.RecordArgs{RepositoryID: repositoryID}
	for _, it := range items {
		args.Items = append(args.Items, tasks.RecordItem{Digest: it.Digest, Tag: it.Tag})
	}
	_, err := r.tasks.Dispatch(ctx, models.NewTask{Name: tasks.NameDownloadImageData,
		Exclusive: []string{models.KindContainerRepository.PRNOf(repositoryID)}, Args: args})
	return err
}
