package hrflow

import (
	"context"
	"errors"
	"iter"
)

var errTODO = errors.New("hrflow: not implemented")

func (c *Client) GetJob(ctx context.Context, boardKey, reference string) (Job, error) { return nil, errTODO }
func (c *Client) CreateJob(ctx context.Context, boardKey string, job Job) (Job, error) { return nil, errTODO }
func (c *Client) EditJob(ctx context.Context, boardKey string, job Job) (Job, error)   { return nil, errTODO }
func (c *Client) SetArchived(ctx context.Context, boardKey, reference string, archived bool) error {
	return errTODO
}
func (c *Client) Jobs(ctx context.Context, boardKey string, opts ListOptions) iter.Seq2[JobRef, error] {
	return func(yield func(JobRef, error) bool) { yield(JobRef{}, errTODO) }
}
func (c *Client) ParseTexts(ctx context.Context, texts []string) ([]TextParsing, error) {
	return nil, errTODO
}
func EnrichmentText(job Job) string                 { return "" }
func ApplyParsing(job Job, p TextParsing) Job        { return job }
func (c *Client) Upsert(ctx context.Context, boardKey string, job Job, opts UpsertOptions) (UpsertResult, error) {
	return UpsertResult{}, errTODO
}
