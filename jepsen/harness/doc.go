// Package harness runs a graft cluster of real processes for the
// consistency suite, with a fault-injecting proxy (package jepsen/proxy)
// on every link, and gives the nemeses their fault primitives: network
// partitions, link delays, client and object-store link faults, SIGKILL,
// SIGSTOP/SIGCONT, restarts, a graceful restart as a rolling upgrade does
// it (GracefulRestart: leadership off, SIGTERM, start, ready and caught
// up), leadership transfer and a membership change that wipes a node and
// adds it back. No root is needed.
//
// Layout. Node i (0-based index, as in the history's Op.Node) has the
// Raft ID "n{i+1}", its data in Dir/n{i+1} and its output appended to
// Dir/n{i+1}/node.log across restarts. Unless Config.NoObjectStore, one
// `graft s3` process serves bucket "graft" from Dir/s3 on a fixed port
// (log: Dir/s3.log). Every port is picked once, below the kernel's
// ephemeral range, so a restarted node gets its addresses back.
//
// Links. For every ordered pair (i, j), i != j, node i reaches node j's
// Raft transport and client API only through two proxies of its own
// (`graft node --dial nj,RAFTPROXY,APIPROXY`); the Raft configuration and
// the node directory hold the real addresses. Clients reach node i through
// its client proxy (ClientEndpoints); the nodes reach the object store
// through one proxy (ObjectStoreURL). Endpoints and DirectObjectStoreURL
// bypass the proxies, for the harness itself and for final checks.
// With Config.Edges = N, N `graft edge` processes ("e1"..., log
// Dir/eK.log, EdgeEndpoints) start once the nodes are ready, with the
// client proxies as their upstream (a fault that cuts clients off a node
// cuts the edges off it too) and ObjectStoreURL as their object store;
// Stop ends them first. Faults are never injected on the edges
// themselves.
// Object-store faults are either on that proxy (S3: blackhole, reset;
// S3Delay; S3Rate: a slow body) or in the store itself, which runs with
// --fault-admin: S3Errors makes it answer HTTP 500 or 503 (see
// objstore/fakes3), set at its real address.
//
//	BINARY node --id n1 --dir DIR/n1 --raft-addr R1 --api-addr A1 --bootstrap \
//	    --peer n1,R1,A1 --peer n2,R2,A2 --peer n3,R3,A3 \
//	    --dial n2,P(1->2 raft),P(1->2 api) --dial n3,... \
//	    --object-store s3://graft/?endpoint=http://S3PROXY&... \
//	    --raft-heartbeat-timeout 300ms --raft-election-timeout 300ms NODEARGS...
//
// Invariants.
//   - Every process runs in its own process group (on Linux also with
//     Pdeathsig=SIGKILL, so a test binary that dies leaves no node behind);
//     signals go to the whole group.
//   - Each process has one waiter goroutine owned by the Cluster; an exit the
//     harness did not cause is logged and kept (UnexpectedExits). Stop
//     returns only after every process has been reaped and every proxy
//     closed.
//   - Operations on one node are serialized; operations on different nodes
//     and on links may run concurrently.
//   - Every fault primitive logs what it did through Config.Logger.
package harness
