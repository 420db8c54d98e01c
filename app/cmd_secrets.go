package app

import (
	"bufio"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/ethhook/ethhook/config"
	"github.com/ethhook/ethhook/endpoint"
	"github.com/ethhook/ethhook/seal"
)

// generatedSecrets are the settings `secrets init` generates, in file order.
var generatedSecrets = []string{"ETHHOOK_SECRET_KEY", "ETHHOOK_JWT_SECRET"}

func newSecretsCmd(rt *Runtime) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "secrets",
		Short: "Generate the secret key and JWT secret; rotate the secret key",
	}
	var file string
	initCmd := &cobra.Command{
		Use:   "init [--file PATH]",
		Short: "Generate ETHHOOK_SECRET_KEY and ETHHOOK_JWT_SECRET (printed, or kept in a file)",
		Long: `Generate a random ETHHOOK_SECRET_KEY (32 bytes, hex) and ETHHOOK_JWT_SECRET
as KEY=value lines, the format of a shell, docker compose .env and
--env-file file.

Without --file they are printed. With --file PATH the file is created with
mode 0600 (its directory 0700) when missing; values already in it are kept,
so running it again changes nothing (make run does so on every start):

  ethhook secrets init --file .ethhook/secrets.env
  ethhook secrets init >> .env
`,
		Args:        cobra.NoArgs,
		Annotations: map[string]string{noConfig: "true"},
		RunE: func(cmd *cobra.Command, args []string) error {
			if file == "" {
				for _, k := range generatedSecrets {
					v, err := randomSecret()
					if err != nil {
						return err
					}
					fmt.Fprintf(cmd.OutOrStdout(), "%s=%s\n", k, v)
				}
				return nil
			}
			added, err := initSecretsFile(file)
			if err != nil {
				return err
			}
			if len(added) == 0 {
				fmt.Fprintf(cmd.ErrOrStderr(), "%s: secrets kept\n", file)
			} else {
				fmt.Fprintf(cmd.ErrOrStderr(), "%s: generated %s\n", file, strings.Join(added, ", "))
			}
			return nil
		},
	}
	initCmd.Flags().StringVar(&file, "file", "", "keep the secrets in this file (created with mode 0600 when missing; existing values are kept)")

	var oldSrc, newSrc string
	rotate := &cobra.Command{
		Use:   "rotate-key [--old-key SRC] [--new-key SRC]",
		Short: "Seal every endpoint secret again under a new secret key, in one transaction",
		Long: `Open every endpoint signing secret (and the old secret a secret rotation keeps
during its overlap) with the old key and seal it again under the new key,
bound to its endpoint id, in one transaction: all or nothing. Secrets
already sealed under the new key are left alone, so it can run again.

The keys default to the configuration: the new key is ETHHOOK_SECRET_KEY,
the old one ETHHOOK_SECRET_KEY_PREVIOUS. With no old key it seals secrets
written by older versions (not bound to their endpoint) again under the
current key. SRC is env:NAME (an environment variable), file:PATH (a file's
first line) or - (the first line of stdin); a key written on the command
line itself works but is visible in ps and shell history.

A rotation without downtime:
  1. give every process ETHHOOK_SECRET_KEY=<new> and
     ETHHOOK_SECRET_KEY_PREVIOUS=<old> and restart them one by one
     (each opens secrets under either key, seals new ones under the new);
  2. run  ethhook secrets rotate-key
  3. remove ETHHOOK_SECRET_KEY_PREVIOUS and restart.
` + envHelp("database_url", "secret_key"),
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			in := bufio.NewReader(cmd.InOrStdin())
			newKey, err := keyFrom(newSrc, rt.Cfg.SecretKey, "--new-key", "secret_key (ETHHOOK_SECRET_KEY)", in, cmd.ErrOrStderr())
			if err != nil {
				return err
			}
			if newKey == "" {
				return errors.New("no new key: set ETHHOOK_SECRET_KEY or give --new-key")
			}
			oldKey, err := keyFrom(oldSrc, rt.Cfg.SecretKeyPrevious, "--old-key", "secret_key_previous (ETHHOOK_SECRET_KEY_PREVIOUS)", in, cmd.ErrOrStderr())
			if err != nil {
				return err
			}
			if err := config.CheckKey(newKey); err != nil && !rt.Cfg.DevInsecure {
				return fmt.Errorf("new key: %w", err)
			}
			to, from, err := rotationBoxes(newKey, oldKey)
			if err != nil {
				return err
			}
			pool, err := rt.Postgres(cmd.Context())
			if err != nil {
				return err
			}
			res, err := endpoint.Reseal(cmd.Context(), pool, from, to)
			if err != nil {
				return fmt.Errorf("rotate key: nothing changed: %w", err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "sealed %d of %d secrets (%d endpoints) again under the new key; the rest already were\n",
				res.Changed, res.Secrets, res.Endpoints)
			if oldKey != "" {
				fmt.Fprintln(cmd.OutOrStdout(), "every process can now run with only the new ETHHOOK_SECRET_KEY: remove ETHHOOK_SECRET_KEY_PREVIOUS")
			}
			return nil
		},
	}
	rotate.Flags().StringVar(&oldSrc, "old-key", "", "the key being replaced: env:NAME, file:PATH or - (default ETHHOOK_SECRET_KEY_PREVIOUS)")
	rotate.Flags().StringVar(&newSrc, "new-key", "", "the key to seal under: env:NAME, file:PATH or - (default ETHHOOK_SECRET_KEY)")
	cmd.AddCommand(initCmd, rotate)
	return cmd
}

// rotationBoxes builds the box that seals (the new key) and the one that
// opens (the new key, then the old one).
func rotationBoxes(newKey, oldKey string) (to, from *seal.Box, err error) {
	nk, err := config.DecodeKey(newKey)
	if err != nil {
		return nil, nil, fmt.Errorf("new key: %w", err)
	}
	if to, err = seal.New(nk); err != nil {
		return nil, nil, err
	}
	if oldKey == "" {
		return to, to, nil
	}
	ok, err := config.DecodeKey(oldKey)
	if err != nil {
		return nil, nil, fmt.Errorf("old key: %w", err)
	}
	from, err = seal.New(nk, ok)
	return to, from, err
}

// keyFrom reads a key from src (env:NAME, file:PATH, - or a literal), or
// returns def when src is empty.
func keyFrom(src, def, flag, key string, stdin *bufio.Reader, stderr io.Writer) (string, error) {
	switch {
	case src == "":
		return def, nil
	case src == "-":
		line, err := stdin.ReadString('\n')
		if err != nil && line == "" {
			return "", fmt.Errorf("%s -: read stdin: %w", flag, err)
		}
		return strings.TrimSpace(line), nil
	case strings.HasPrefix(src, "env:"):
		v := strings.TrimSpace(os.Getenv(strings.TrimPrefix(src, "env:")))
		if v == "" {
			return "", fmt.Errorf("%s %s: the variable is not set", flag, src)
		}
		return v, nil
	case strings.HasPrefix(src, "file:"):
		b, err := os.ReadFile(strings.TrimPrefix(src, "file:"))
		if err != nil {
			return "", fmt.Errorf("%s: %w", flag, err)
		}
		line, _, _ := strings.Cut(string(b), "\n")
		return strings.TrimSpace(line), nil
	}
	fmt.Fprintf(stderr, "warning: %s given on the command line is visible in ps and shell history; prefer env:NAME, file:PATH or - (default: %s)\n", flag, key)
	return strings.TrimSpace(src), nil
}

func randomSecret() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return hex.EncodeToString(b), nil
}

// initSecretsFile makes sure path holds every generated secret, creating
// it (0600, its directory 0700) or adding the missing ones; it returns the
// names it generated.
func initSecretsFile(path string) ([]string, error) {
	existing, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("secrets file: %w", err)
	}
	have := map[string]bool{}
	for _, line := range strings.Split(string(existing), "\n") {
		if k, v, ok := strings.Cut(strings.TrimSpace(line), "="); ok && v != "" {
			have[strings.TrimSpace(k)] = true
		}
	}
	var added []string
	body := string(existing)
	if body != "" && !strings.HasSuffix(body, "\n") {
		body += "\n"
	}
	if body == "" {
		body = "# Generated by `ethhook secrets init`; keep private (mode 0600), never commit.\n"
	}
	for _, k := range generatedSecrets {
		if have[k] {
			continue
		}
		v, err := randomSecret()
		if err != nil {
			return nil, err
		}
		body += k + "=" + v + "\n"
		added = append(added, k)
	}
	if len(added) == 0 {
		return nil, os.Chmod(path, 0o600)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("secrets file: %w", err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".secrets-*")
	if err != nil {
		return nil, fmt.Errorf("secrets file: %w", err)
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return nil, fmt.Errorf("secrets file: %w", err)
	}
	if _, err := tmp.WriteString(body); err != nil {
		tmp.Close()
		return nil, fmt.Errorf("secrets file: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return nil, fmt.Errorf("secrets file: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return nil, fmt.Errorf("secrets file: %w", err)
	}
	return added, nil
}
