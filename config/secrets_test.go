package config

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"strings"
	"testing"
)

// Secrets for tests: random-looking, never shipped as defaults.
const (
	testKey  = "9f3c1a7be2d4058c6f1e93b7a25d0c4e8b7f61a2d93e05c4b8a7f6e1d2c3b4a5"
	testKey2 = "4be1f09a3c7d2658e0b9a4f13d6c8e27a5f0b9c8d7e6f5a4b3c2d1e0f9a8b7c6"
	testJWT  = "Qm9zcy1xdWlldC1yaXZlci1ub3J0aC1jb3JhbC1oYXdr-7d1e"
)

func TestConfigRefusesShippedAndWeakSecretsNamingTheKey(t *testing.T) {
	counting := make([]byte, 32)
	for i := range counting {
		counting[i] = byte(i)
	}
	cases := []struct {
		name string
		env  map[string]string
		want string
	}{
		{"old make run and compose key 00..01", map[string]string{"ETHHOOK_SECRET_KEY": strings.Repeat("0", 63) + "1"}, "secret_key (ETHHOOK_SECRET_KEY) is a well-known key"},
		{"all zeros", map[string]string{"ETHHOOK_SECRET_KEY": strings.Repeat("00", 32)}, "secret_key (ETHHOOK_SECRET_KEY) is all zeros"},
		{"zeros and one byte", map[string]string{"ETHHOOK_SECRET_KEY": "ff" + strings.Repeat("00", 31)}, "secret_key (ETHHOOK_SECRET_KEY) is all zeros"},
		{"repeated byte", map[string]string{"ETHHOOK_SECRET_KEY": strings.Repeat("ab", 32)}, "secret_key (ETHHOOK_SECRET_KEY) has only 1 distinct bytes"},
		{"repeated pair", map[string]string{"ETHHOOK_SECRET_KEY": strings.Repeat("dead", 16)}, "secret_key (ETHHOOK_SECRET_KEY) has only 2 distinct bytes"},
		{"counting", map[string]string{"ETHHOOK_SECRET_KEY": hex.EncodeToString(counting)}, "secret_key (ETHHOOK_SECRET_KEY) is a counting sequence"},
		{"text as base64", map[string]string{"ETHHOOK_SECRET_KEY": base64.StdEncoding.EncodeToString([]byte("my-ethhook-production-key-2024!!"))}, "secret_key (ETHHOOK_SECRET_KEY) is printable text"},
		{"old make run jwt", map[string]string{"ETHHOOK_JWT_SECRET": "dev-only-jwt-secret-change-me-in-production"}, "admin.jwt_secret (ETHHOOK_JWT_SECRET) is a well-known secret"},
		{"old compose jwt", map[string]string{"ETHHOOK_JWT_SECRET": "demo-only-jwt-secret-change-me-please"}, "admin.jwt_secret (ETHHOOK_JWT_SECRET) is a well-known secret"},
		{"placeholder jwt", map[string]string{"ETHHOOK_JWT_SECRET": "please-CHANGEME-before-going-live-0123"}, "admin.jwt_secret (ETHHOOK_JWT_SECRET) is a placeholder"},
		{"repeated jwt", map[string]string{"ETHHOOK_JWT_SECRET": strings.Repeat("s", 40)}, "admin.jwt_secret (ETHHOOK_JWT_SECRET) has only 1 distinct characters"},
		{"jwt is the secret key", map[string]string{"ETHHOOK_SECRET_KEY": testKey, "ETHHOOK_JWT_SECRET": testKey}, "admin.jwt_secret (ETHHOOK_JWT_SECRET) is the secret_key"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			clearEnv(t)
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			_, err := Load(Options{})
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "ETHHOOK_DEV_INSECURE=1") {
				t.Fatalf("err = %v, want one containing %q and naming the development flag", err, tc.want)
			}
			for _, v := range tc.env {
				if len(v) >= 32 && strings.Contains(err.Error(), v) {
					t.Fatalf("the error shows the secret itself: %v", err)
				}
			}

			t.Setenv("ETHHOOK_DEV_INSECURE", "1")
			cfg, err := Load(Options{})
			if err != nil {
				t.Fatalf("with ETHHOOK_DEV_INSECURE=1: %v", err)
			}
			w := strings.Join(cfg.Warnings(), "\n")
			if !strings.Contains(w, tc.want) || !strings.Contains(w, "dev_insecure (ETHHOOK_DEV_INSECURE)") {
				t.Fatalf("warnings %q: want one naming %q and the flag", w, tc.want)
			}
		})
	}
}

func TestAWeakPreviousKeyIsAcceptedWithAWarningToFinishTheRotation(t *testing.T) {
	clearEnv(t)
	t.Setenv("ETHHOOK_SECRET_KEY", testKey)
	t.Setenv("ETHHOOK_SECRET_KEY_PREVIOUS", strings.Repeat("0", 63)+"1") // the old shipped key, rotated away from
	cfg, err := Load(Options{})
	if err != nil {
		t.Fatal(err)
	}
	w := strings.Join(cfg.Warnings(), "\n")
	if !strings.Contains(w, "secret_key_previous (ETHHOOK_SECRET_KEY_PREVIOUS) is a well-known key") || !strings.Contains(w, "ethhook secrets rotate-key") {
		t.Fatalf("warnings %q", w)
	}
	t.Setenv("ETHHOOK_SECRET_KEY_PREVIOUS", strings.ToUpper(testKey))
	if _, err := Load(Options{}); err == nil || !strings.Contains(err.Error(), "secret_key_previous (ETHHOOK_SECRET_KEY_PREVIOUS): is the same key as secret_key") {
		t.Fatalf("previous key = current key: %v", err)
	}
}

func TestCheckKeyRefusesWeakKeys(t *testing.T) {
	if err := CheckKey(strings.Repeat("0", 63) + "1"); err == nil {
		t.Fatal("the old shipped key passed CheckKey")
	}
	if err := CheckKey(testKey); err != nil {
		t.Fatal(err)
	}
}

func TestRandomSecretsAreAcceptedWithoutWarnings(t *testing.T) {
	clearEnv(t)
	t.Setenv("ETHHOOK_DEV_INSECURE", "1") // Warnings lists every problem only with the flag
	for i := 0; i < 200; i++ {
		k, p, j := make([]byte, 32), make([]byte, 32), make([]byte, 16)
		for _, b := range [][]byte{k, p, j} {
			if _, err := rand.Read(b); err != nil {
				t.Fatal(err)
			}
		}
		for _, enc := range []func([]byte) string{hex.EncodeToString, base64.StdEncoding.EncodeToString} {
			t.Setenv("ETHHOOK_SECRET_KEY", enc(k))
			t.Setenv("ETHHOOK_SECRET_KEY_PREVIOUS", enc(p))
			t.Setenv("ETHHOOK_JWT_SECRET", hex.EncodeToString(j))
			cfg, err := Load(Options{})
			if err != nil {
				t.Fatal(err)
			}
			if w := cfg.Warnings(); len(w) > 0 {
				t.Fatalf("random secrets flagged: %v", w)
			}
		}
	}
}

func TestEmptySecretsNeedNoFlag(t *testing.T) {
	clearEnv(t)
	cfg, err := Load(Options{})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.SecretKey != "" || cfg.Admin.JWTSecret != "" || cfg.DevInsecure || len(cfg.Warnings()) > 0 {
		t.Fatalf("defaults carry a secret or a warning: %+v %v", cfg, cfg.Warnings())
	}
}

func TestMetricsListenAddrFollowsAPIOnLoopback(t *testing.T) {
	for _, c := range []struct {
		http, addr string
		port       int
		want       string
	}{
		{":8080", "", 9090, ":9090"},                        // API on every interface: metrics too (unchanged)
		{"0.0.0.0:8080", "", 9090, ":9090"},                 //
		{"127.0.0.1:8080", "", 9090, "127.0.0.1:9090"},      // API on loopback: metrics stays there
		{"[::1]:8080", "", 9091, "[::1]:9091"},              //
		{"localhost:8080", "", 9090, "localhost:9090"},      //
		{"10.1.2.3:8080", "", 9090, ":9090"},                //
		{"127.0.0.1:8080", "", 0, ""},                       // METRICS_PORT=0 disables
		{":8080", "127.0.0.1:9100", 9090, "127.0.0.1:9100"}, // metrics_addr wins
		{"127.0.0.1:8080", "0.0.0.0:9100", 0, "0.0.0.0:9100"},
	} {
		cfg := Defaults()
		cfg.HTTPAddr, cfg.MetricsAddr, cfg.MetricsPort = c.http, c.addr, c.port
		if got := cfg.MetricsListenAddr(); got != c.want {
			t.Errorf("http_addr %q metrics_addr %q metrics_port %d: listen on %q, want %q", c.http, c.addr, c.port, got, c.want)
		}
	}
	clearEnv(t)
	t.Setenv("ETHHOOK_METRICS_ADDR", "127.0.0.1:9123")
	cfg, err := Load(Options{})
	if err != nil || cfg.MetricsListenAddr() != "127.0.0.1:9123" {
		t.Fatalf("ETHHOOK_METRICS_ADDR: %q, %v", cfg.MetricsListenAddr(), err)
	}
}

func TestAllowListTakesRangesAndSingleAddressPorts(t *testing.T) {
	d := DefaultDelivery()
	d.AllowCIDRs = []string{"10.0.0.0/8", "127.0.0.1:9000", "[::1]:9000", "[::ffff:127.0.0.1]:9001"}
	prefixes, addrs, err := d.Allowed()
	if err != nil {
		t.Fatal(err)
	}
	if len(prefixes) != 1 || prefixes[0].String() != "10.0.0.0/8" {
		t.Fatalf("prefixes %v", prefixes)
	}
	if len(addrs) != 3 || addrs[0].String() != "127.0.0.1:9000" || addrs[1].String() != "[::1]:9000" || addrs[2].String() != "127.0.0.1:9001" {
		t.Fatalf("addrs %v", addrs)
	}
	for _, bad := range []string{"127.0.0.1:0", "127.0.0.1", "localhost:9000"} {
		d.AllowCIDRs = []string{bad}
		if _, _, err := d.Allowed(); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestDemoReceiverIsExactlyTheDemoAddress(t *testing.T) {
	for _, c := range []struct {
		addr string
		want []string
	}{
		{"127.0.0.1:9000", []string{"127.0.0.1:9000"}},
		{"localhost:9100", []string{"127.0.0.1:9100", "[::1]:9100"}},
		{"[::1]:9000", []string{"[::1]:9000"}},
		{"", nil},
		{"10.0.0.1:9000", nil},
	} {
		var got []string
		for _, ap := range (Devnet{DemoAddr: c.addr}).DemoReceiver() {
			got = append(got, ap.String())
		}
		if strings.Join(got, ",") != strings.Join(c.want, ",") {
			t.Errorf("DemoReceiver(%q) = %v, want %v", c.addr, got, c.want)
		}
	}
}
