package redact

import (
	"strings"
	"testing"
)

func TestCredentialsMasksPasswordsAndSensitiveQueryParameters(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"postgres://u:pw@db:5432/ethhook?sslmode=disable", "postgres://u:***@db:5432/ethhook?sslmode=disable"},
		{"postgres://u@h/db?password=hunter2&sslmode=require", "postgres://u@h/db?password=***&sslmode=require"},
		{"redis://h:6379/0?password=hunter2", "redis://h:6379/0?password=***"},
		{"redis://h?PASS=a&pwd=b&token=c&api_key=d&apikey=e&access_token=f&auth=g&secret=h&key=i&db=2",
			"redis://h?PASS=***&access_token=***&api_key=***&apikey=***&auth=***&db=2&key=***&pwd=***&secret=***&token=***"},
		{"redis://:p@h:6379", "redis://:***@h:6379"},
		{"postgres://h/db", "postgres://h/db"},
		{"postgres://h/db?password=%ZZ", "postgres://h/db?***"},
	} {
		if got := Credentials(c.in); got != c.want {
			t.Errorf("Credentials(%q) = %q, want %q", c.in, got, c.want)
		}
		if strings.Contains(Credentials(c.in), "hunter2") {
			t.Errorf("Credentials(%q) shows the password", c.in)
		}
	}
}

func TestURLDropsUserinfoAndEveryQueryValue(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"https://hooks.example.com/in/abc?token=s3cr3t&x=1", "https://hooks.example.com/in/abc?token=***&x=***"},
		{"https://user:pw@hooks.example.com/in", "https://hooks.example.com/in"},
		{"http://127.0.0.1:9000/webhook", "http://127.0.0.1:9000/webhook"},
		{"https://h/p#frag", "https://h/p"},
		{"not a url", "<unparseable URL>"},
	} {
		if got := URL(c.in); got != c.want {
			t.Errorf("URL(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}
