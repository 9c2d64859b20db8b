// Package devcluster is the process supervisor behind `graft dev`: it runs
// N `graft node` child processes on loopback, and an S3-compatible server
// for them to flush to, copies the nodes' output, restarts the ones that
// die and stops them all in order when its context ends.
//
// Layout. Node i (1-based) is called "n{i}", keeps its state in Dir/n{i},
// serves its client API on Host:PortBase+i and Raft on Host:PortBase+100+i.
// Unless Config.ObjectStore names an external store, the embedded S3
// server (objstore/fakes3) serves bucket Config.S3Bucket on
// Host:PortBase+300 and keeps its objects in Dir/s3, across runs. Every
// node is started with the same full --peer list, --bootstrap and the
// object store's URL:
//
//	BINARY node --id n1 --dir DIR/n1 --raft-addr HOST:7101 --api-addr HOST:7001 \
//	    --bootstrap --peer n1,HOST:7101,HOST:7001 --peer n2,... --peer n3,... \
//	    --object-store s3://graft/?endpoint=http://HOST:7300&... EXTRAARGS...
//
// Output. A node's stdout and stderr share one pipe; each line is written to
// Config.LogOutput prefixed with "n{i} | " (one Write per line, serialized
// across nodes) and appended, unprefixed, to Dir/n{i}/node.log.
//
// Invariants.
//   - Every child is owned by exactly one supervising goroutine, and Run
//     returns only after every child it started has been reaped.
//   - A child that exits while Run's context is live is logged at WARN and
//     restarted after Config.RestartDelay; consecutive quick exits back off
//     exponentially up to Config.MaxRestartDelay. The other nodes keep running.
//   - On shutdown every child gets SIGTERM, and SIGKILL after
//     Config.StopTimeout if it is still alive.
//   - The embedded S3 server is up before the first node starts and stops
//     only after the last node has been reaped, so a node can flush while it
//     shuts down. A port or directory the server cannot take fails Run
//     before any node starts.
//   - Children run in their own process group, so a terminal's Ctrl-C reaches
//     only the supervisor, which then shuts them down in order. On Linux
//     they also carry Pdeathsig=SIGKILL, so a supervisor that is itself
//     SIGKILLed leaves no orphans behind.
package devcluster
