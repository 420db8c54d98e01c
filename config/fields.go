package config

// Walking the configuration by its keys: the mapstructure tags name every
// setting, and loading (defaults, Keys), printing (masked) and the secret
// tags all read the structs through these two.

import (
	"iter"
	"reflect"
	"time"
)

// settings yields the settings of a config struct type with their keys:
// the exported fields that carry a mapstructure tag.
func settings(t reflect.Type) iter.Seq2[string, reflect.StructField] {
	return func(yield func(string, reflect.StructField) bool) {
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			if key := f.Tag.Get("mapstructure"); key != "" && f.IsExported() {
				if !yield(key, f) {
					return
				}
			}
		}
	}
}

// isSection reports whether a setting of type t is a section of settings
// ("log", "ingest") rather than one value.
func isSection(t reflect.Type) bool {
	return t.Kind() == reflect.Struct && t != reflect.TypeOf(time.Duration(0))
}
