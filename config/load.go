package config

import (
	"fmt"
	"net/url"
	"os"
	"reflect"
	"strings"

	"github.com/go-viper/mapstructure/v2"
	"github.com/spf13/pflag"
	"github.com/spf13/viper"
)

// DefaultFile is read when --config is not given and it exists.
const DefaultFile = "ethhook.yaml"

// envAliases are the environment names of the original review that keep
// working beside ETHHOOK_*; the ETHHOOK_ name wins when both are set.
var envAliases = map[string][]string{
	"metrics_port":      {"METRICS_PORT"},
	"dedup_ttl_seconds": {"DEDUP_TTL_SECONDS"},
	"admin.jwt_secret":  {"ETHHOOK_JWT_SECRET"},
}

// EnvNames lists the environment variables that set a key, preferred first.
func EnvNames(key string) []string {
	return append([]string{"ETHHOOK_" + strings.ToUpper(strings.NewReplacer(".", "_", "-", "_").Replace(key))}, envAliases[key]...)
}

// Options says where Load reads from besides the environment.
type Options struct {
	// File is --config; empty means ./ethhook.yaml when it exists.
	File string
	// Flags are bound to the keys in FlagKeys (flag name -> config key);
	// a flag set on the command line wins over everything.
	Flags    *pflag.FlagSet
	FlagKeys map[string]string
}

// Load builds the effective configuration (flags > environment > file >
// defaults) and validates it.
func Load(opts Options) (Config, error) {
	cfg, source, err := load(opts)
	if err != nil {
		return cfg, err
	}
	return cfg, annotate(cfg.Validate(), source)
}

// load reads the configuration and returns with it where each key's value
// came from (see sourceOf), for error messages.
func load(opts Options) (Config, func(key string) string, error) {
	v := viper.New()
	for key, val := range leaves(reflect.ValueOf(Defaults()), "") {
		v.SetDefault(key, val)
		if err := v.BindEnv(append([]string{key}, EnvNames(key)...)...); err != nil {
			return Config{}, nil, err
		}
	}
	file := opts.File
	if file == "" {
		if _, err := os.Stat(DefaultFile); err == nil {
			file = DefaultFile
		}
	}
	if file != "" {
		v.SetConfigFile(file)
		v.SetConfigType("yaml")
		if err := v.ReadInConfig(); err != nil {
			return Config{}, nil, fmt.Errorf("read config file %s: %w", file, err)
		}
	}
	if opts.Flags != nil {
		for name, key := range opts.FlagKeys {
			if f := opts.Flags.Lookup(name); f != nil {
				if err := v.BindPFlag(key, f); err != nil {
					return Config{}, nil, fmt.Errorf("bind flag --%s: %w", name, err)
				}
			}
		}
	}
	var cfg Config
	decode := mapstructure.ComposeDecodeHookFunc(
		mapstructure.StringToTimeDurationHookFunc(),
		mapstructure.StringToSliceHookFunc(","),
	)
	// Each bad value named with where it came from, before the whole
	// decode would report only the first in mapstructure's words.
	if err := checkValues(v, opts, file, decode); err != nil {
		return Config{}, nil, fmt.Errorf("invalid config: %w", err)
	}
	if err := v.UnmarshalExact(&cfg, viper.DecodeHook(decode)); err != nil {
		return Config{}, nil, fmt.Errorf("invalid config: %w", err)
	}
	if !v.IsSet("redis.url") || v.Get("redis.url") == Defaults().Redis.URL {
		if u := legacyRedisURL(cfg.Redis.URL); u != "" {
			cfg.Redis.URL = u
		}
	}
	cfg.Chains = resolveChains(cfg.Chains, os.Getenv)
	return cfg, func(key string) string { return sourceOf(key, v, opts, file) }, nil
}

// legacyRedisURL builds a URL from REDIS_HOST, REDIS_PORT and REDIS_PASSWORD
// when any is set and ETHHOOK_REDIS_URL is not.
func legacyRedisURL(current string) string {
	if os.Getenv("ETHHOOK_REDIS_URL") != "" {
		return ""
	}
	host, port, pass := os.Getenv("REDIS_HOST"), os.Getenv("REDIS_PORT"), os.Getenv("REDIS_PASSWORD")
	if host == "" && port == "" && pass == "" {
		return ""
	}
	u, err := url.Parse(current)
	if err != nil {
		return ""
	}
	h, p := u.Hostname(), u.Port()
	if host != "" {
		h = host
	}
	if port != "" {
		p = port
	}
	if p == "" {
		p = "6379"
	}
	u.Host = h + ":" + p
	if pass != "" {
		u.User = url.UserPassword("", pass)
	}
	return u.String()
}

// leaves maps every scalar (and scalar-list) key of a config struct to its
// value, using the mapstructure tags: "log.level" -> "info". Lists of
// structs (chains) have no defaults and are left out.
func leaves(v reflect.Value, prefix string) map[string]any {
	out := map[string]any{}
	for tag, f := range settings(v.Type()) {
		key := prefix + tag
		fv := v.Field(f.Index[0])
		switch {
		case isSection(fv.Type()):
			for k, val := range leaves(fv, key+".") {
				out[k] = val
			}
		case fv.Kind() == reflect.Slice && fv.Type().Elem().Kind() == reflect.Struct:
		default:
			out[key] = fv.Interface()
		}
	}
	return out
}

// Keys lists every configuration key with its default, for help texts.
func Keys() map[string]any { return leaves(reflect.ValueOf(Defaults()), "") }
