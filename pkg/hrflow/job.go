package hrflow

// Job is an HrFlow job as a JSON object. Formats build it, logics transform it,
// the client sends it as is: a map keeps every field a user format adds and the
// nulls the default format must keep.
type Job map[string]any

// Reference returns the job's "reference", or "" when it is absent or not a string.
func (j Job) Reference() string {
	s, _ := j["reference"].(string)
	return s
}

// Key returns the job's "key" (set by HrFlow), or "" when it is absent.
func (j Job) Key() string {
	s, _ := j["key"].(string)
	return s
}

// Archived reports whether the job carries a non-null "archived_at".
func (j Job) Archived() bool {
	v, ok := j["archived_at"]
	return ok && v != nil && v != ""
}

// Tag is one {name, value} entry of a job's tags or metadatas. Value is a
// JSON value as encoding/json decodes it into an any (nil for null). Formats
// may fill a job's "tags" with a []Tag: it encodes as the list of objects
// HrFlow expects, faster than a list of maps.
type Tag struct {
	Name  string `json:"name"`
	Value any    `json:"value"`
}
