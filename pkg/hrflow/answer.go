package hrflow

import (
	"encoding/json"

	"github.com/valyala/fastjson"
)

// answerParsers parse the answers to job writes, which echo the whole job
// when the client needs only its key and dates.
var answerParsers fastjson.ParserPool

// decodeItem reads a successful answer whose data is one job (a write's
// answer) into *dst, and returns its meta, without decoding the rest of
// the job. ok is false for anything but a plainly successful answer of
// that shape (an error code, a field of another type): decode's general
// path then reads it, and says what is wrong.
func decodeItem(data []byte, dst **listItem) (meta json.RawMessage, ok bool) {
	p := answerParsers.Get()
	defer answerParsers.Put(p)
	v, err := p.ParseBytes(data)
	if err != nil || v.Type() != fastjson.TypeObject {
		return nil, false
	}
	if code := v.Get("code"); code != nil {
		if code.Type() != fastjson.TypeNumber {
			return nil, false
		}
		if n, err := code.Int(); err != nil || n >= 400 {
			return nil, false
		}
	}
	job := v.Get("data")
	switch {
	case job == nil || job.Type() == fastjson.TypeNull:
		*dst = nil
	case job.Type() != fastjson.TypeObject:
		return nil, false
	default:
		var it listItem
		for _, f := range []struct {
			name string
			to   *flexString
		}{{"key", &it.Key}, {"reference", &it.Reference}, {"created_at", &it.CreatedAt}, {"updated_at", &it.UpdatedAt}, {"archived_at", &it.ArchivedAt}} {
			fv := job.Get(f.name)
			switch {
			case fv == nil || fv.Type() == fastjson.TypeNull:
			case fv.Type() == fastjson.TypeString:
				*f.to = flexString(fv.GetStringBytes())
			default:
				return nil, false // flexString's JSON text: the general path
			}
		}
		*dst = &it
	}
	if m := v.Get("meta"); m != nil {
		meta = m.MarshalTo(nil)
	}
	return meta, true
}
