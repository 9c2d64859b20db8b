package devcluster_test

import (
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/graft-cluster/graft/cluster/devcluster"
	"github.com/graft-cluster/graft/objstore/fakes3"
)

func validConfig() devcluster.Config {
	c := devcluster.DefaultConfig()
	c.Binary = "/usr/local/bin/graft"
	c.Dir = "/tmp/graft-dev"
	return c
}

func TestConfig_Validate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		edit func(*devcluster.Config)
		ok   bool
	}{
		{"defaults with binary and dir", func(*devcluster.Config) {}, true},
		{"zero restart delay", func(c *devcluster.Config) { c.RestartDelay = 0 }, true},
		{"one node", func(c *devcluster.Config) { c.Nodes = 1 }, true},
		{"highest port 65535", func(c *devcluster.Config) { c.PortBase = 65535 - 300 }, true},
		{"highest node port 65535 with an external store", func(c *devcluster.Config) { c.PortBase = 65535 - 103; c.ObjectStore = "mem://" }, true},
		{"highest node port 65535 with an s3 port", func(c *devcluster.Config) { c.PortBase = 65535 - 103; c.S3Port = 9000 }, true},
		{"s3 port past 65535", func(c *devcluster.Config) { c.PortBase = 65535 - 299 }, false},
		{"negative s3 port", func(c *devcluster.Config) { c.S3Port = -1 }, false},
		{"s3 port past 65535 set", func(c *devcluster.Config) { c.S3Port = 65536 }, false},
		{"s3 port on an api port", func(c *devcluster.Config) { c.S3Port = c.PortBase + 3 }, false},
		{"s3 port on a raft port", func(c *devcluster.Config) { c.S3Port = c.PortBase + 101 }, false},
		{"s3 port next to the node ports", func(c *devcluster.Config) { c.S3Port = c.PortBase + 4 }, true},
		{"invalid bucket", func(c *devcluster.Config) { c.S3Bucket = "No_Such" }, false},
		{"empty bucket", func(c *devcluster.Config) { c.S3Bucket = "" }, false},
		{"empty bucket with an external store", func(c *devcluster.Config) { c.S3Bucket = ""; c.ObjectStore = "mem://" }, true},
		{"no binary", func(c *devcluster.Config) { c.Binary = "" }, false},
		{"no dir", func(c *devcluster.Config) { c.Dir = "" }, false},
		{"zero nodes", func(c *devcluster.Config) { c.Nodes = 0 }, false},
		{"100 nodes collide with raft ports", func(c *devcluster.Config) { c.Nodes = 100 }, false},
		{"no host", func(c *devcluster.Config) { c.Host = "" }, false},
		{"zero port base", func(c *devcluster.Config) { c.PortBase = 0 }, false},
		{"port past 65535", func(c *devcluster.Config) { c.PortBase = 65535 - 102 }, false},
		{"negative restart delay", func(c *devcluster.Config) { c.RestartDelay = -time.Second }, false},
		{"negative crash loop uptime", func(c *devcluster.Config) { c.CrashLoopUptime = -time.Second }, false},
		{"zero crash loop count", func(c *devcluster.Config) { c.CrashLoopCount = 0 }, false},
		{"max restart delay below restart delay", func(c *devcluster.Config) { c.MaxRestartDelay = c.RestartDelay / 2 }, false},
		{"zero stop timeout", func(c *devcluster.Config) { c.StopTimeout = 0 }, false},
		{"zero ready poll interval", func(c *devcluster.Config) { c.ReadyPollInterval = 0 }, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := validConfig()
			tt.edit(&c)
			err := c.Validate()
			if tt.ok && err != nil {
				t.Fatalf("Validate = %v, want nil", err)
			}
			if !tt.ok && !errors.Is(err, devcluster.ErrInvalidConfig) {
				t.Fatalf("Validate = %v, want ErrInvalidConfig", err)
			}
			if _, nerr := devcluster.New(c); (nerr == nil) != tt.ok {
				t.Fatalf("New error = %v, want ok=%v", nerr, tt.ok)
			}
		})
	}
}

func TestConfig_defaults(t *testing.T) {
	t.Parallel()
	c := devcluster.DefaultConfig()
	if c.Nodes != 3 || c.Host != "127.0.0.1" || c.PortBase != 7000 || c.RestartDelay != time.Second ||
		c.StopTimeout != 15*time.Second || c.MaxRestartDelay != 10*time.Second || c.ReadyPollInterval != 50*time.Millisecond ||
		c.ObjectStore != "" || c.S3Port != 0 || c.S3Bucket != "graft" {
		t.Errorf("DefaultConfig = %+v", c)
	}
}

func TestCluster_Endpoints(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		edit func(*devcluster.Config)
		want []string
	}{
		{"defaults", func(*devcluster.Config) {}, []string{
			"http://127.0.0.1:7001", "http://127.0.0.1:7002", "http://127.0.0.1:7003",
		}},
		{"ipv6 host and port base", func(c *devcluster.Config) { c.Host = "::1"; c.PortBase = 9000; c.Nodes = 2 }, []string{
			"http://[::1]:9001", "http://[::1]:9002",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := validConfig()
			tt.edit(&c)
			cl, err := devcluster.New(c)
			if err != nil {
				t.Fatalf("New: %v", err)
			}
			if got := cl.Endpoints(); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Endpoints = %q, want %q", got, tt.want)
			}
			wantIDs := []string{"n1", "n2", "n3"}[:c.Nodes]
			if got := cl.NodeIDs(); !reflect.DeepEqual(got, wantIDs) {
				t.Errorf("NodeIDs = %q, want %q", got, wantIDs)
			}
			if got := cl.PID("n1"); got != 0 {
				t.Errorf("PID before Run = %d, want 0", got)
			}
		})
	}
}

func TestCluster_ObjectStore(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		edit  func(*devcluster.Config)
		want  string // ObjectStore
		s3    devcluster.S3Server
		embed bool
	}{
		{"defaults", func(*devcluster.Config) {},
			fakes3.StoreURL("http://127.0.0.1:7300", "graft", ""),
			devcluster.S3Server{Endpoint: "http://127.0.0.1:7300", Bucket: "graft", Dir: "/tmp/graft-dev/s3"}, true},
		{"port base, bucket and ipv6 host", func(c *devcluster.Config) { c.Host = "::1"; c.PortBase = 9000; c.S3Bucket = "dev" },
			fakes3.StoreURL("http://[::1]:9300", "dev", ""),
			devcluster.S3Server{Endpoint: "http://[::1]:9300", Bucket: "dev", Dir: "/tmp/graft-dev/s3"}, true},
		{"s3 port", func(c *devcluster.Config) { c.S3Port = 9999 },
			fakes3.StoreURL("http://127.0.0.1:9999", "graft", ""),
			devcluster.S3Server{Endpoint: "http://127.0.0.1:9999", Bucket: "graft", Dir: "/tmp/graft-dev/s3"}, true},
		{"external store", func(c *devcluster.Config) { c.ObjectStore = "file:///tmp/store"; c.S3Port = 9999 },
			"file:///tmp/store", devcluster.S3Server{}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := validConfig()
			tt.edit(&c)
			cl, err := devcluster.New(c)
			if err != nil {
				t.Fatalf("New: %v", err)
			}
			if got := cl.ObjectStore(); got != tt.want {
				t.Errorf("ObjectStore = %s, want %s", got, tt.want)
			}
			if s3, ok := cl.EmbeddedS3(); s3 != tt.s3 || ok != tt.embed {
				t.Errorf("EmbeddedS3 = %+v, %v; want %+v, %v", s3, ok, tt.s3, tt.embed)
			}
		})
	}
}
