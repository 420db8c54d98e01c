package config

// The range checks the sections' Validate methods share. Each returns nil
// when the value is fine, or an error that starts with the key it is
// about (with its environment name where the message gives one), so a
// Validate is one errors.Join of checks (Join drops the nils) and every
// section words the same rule the same way.

import (
	"fmt"
	"strings"
	"time"
)

// number is what the range checks compare: counts, sizes and durations.
type number interface {
	~int | ~int64 | ~uint64
}

// atLeast: "<key>: must be at least <min>, got <v>".
func atLeast[T number](key string, v, min T) error {
	if v < min {
		return fmt.Errorf("%s: must be at least %s, got %v", key, limit(min), v)
	}
	return nil
}

// within: "<key>: must be <lo>..<hi>, got <v>".
func within[T number](key string, v, lo, hi T) error {
	if v < lo || v > hi {
		return fmt.Errorf("%s: must be %s..%s, got %v", key, limit(lo), limit(hi), v)
	}
	return nil
}

// positive: "<key>: must be positive, got <v>".
func positive[T number](key string, v T) error {
	if v <= 0 {
		return fmt.Errorf("%s: must be positive, got %v", key, v)
	}
	return nil
}

// notNegative: "<key>: must not be negative, got <v>".
func notNegative[T number](key string, v T) error {
	if v < 0 {
		return fmt.Errorf("%s: must not be negative, got %v", key, v)
	}
	return nil
}

// orMore: "<key>: must be 0 (<zero>) or more, got <v>", for a setting
// whose 0 turns something off.
func orMore[T number](key string, v T, zero string) error {
	if v < 0 {
		return fmt.Errorf("%s: must be 0 (%s) or more, got %v", key, zero, v)
	}
	return nil
}

// failIf is a check whose rule or wording is the setting's own.
func failIf(bad bool, format string, args ...any) error {
	if bad {
		return fmt.Errorf(format, args...)
	}
	return nil
}

// limit writes a bound as people write it in a config file: "1m", not
// Duration.String's "1m0s" (the value got is shown as Go prints it).
func limit[T number](v T) string {
	d, ok := any(v).(time.Duration)
	if !ok {
		return fmt.Sprint(v)
	}
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}
