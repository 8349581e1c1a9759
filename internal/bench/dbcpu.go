package bench

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
)

// The servers' PostgreSQL runs in processes of its own, so the servers' CPU leaves out the
// database's part of a change. When it runs on this machine, the bench finds its postmaster and
// reads the CPU of the postmaster and every process under it (the servers' backends, the WAL
// writer, the checkpointer…) from /proc, over the same window as the servers'.

// procStat is what the bench reads of /proc/PID/stat.
type procStat struct {
	comm string
	ppid int
	// cpu is the process's user and system time; children's that of its children it has waited
	// for, which keeps what an ended backend used in its postmaster's account.
	cpu, children float64 // seconds
}

// readProcStat reads /proc/PID/stat.
func readProcStat(pid int) (procStat, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return procStat{}, err
	}
	// "pid (comm) state ppid …": comm may hold spaces and parens, so cut at the last paren.
	open, end := bytes.IndexByte(b, '('), bytes.LastIndexByte(b, ')')
	if open < 0 || end < open {
		return procStat{}, fmt.Errorf("/proc/%d/stat: no command name", pid)
	}
	f := strings.Fields(string(b[end+1:]))
	if len(f) < 15 {
		return procStat{}, fmt.Errorf("short /proc/%d/stat", pid)
	}
	var t [4]float64
	var errs []error
	for i := range t {
		v, err := strconv.ParseUint(f[11+i], 10, 64) // utime, stime, cutime, cstime
		errs = append(errs, err)
		t[i] = float64(v) / clockTicks
	}
	ppid, err := strconv.Atoi(f[1])
	if err := errors.Join(append(errs, err)...); err != nil {
		return procStat{}, fmt.Errorf("/proc/%d/stat: %w", pid, err)
	}
	return procStat{comm: string(b[open+1 : end]), ppid: ppid, cpu: t[0] + t[1], children: t[2] + t[3]}, nil
}

// treeCPU returns the CPU seconds that process pid and its children have used, those that ended
// included once pid waited for them.
func treeCPU(pid int) (float64, error) {
	// The parent first: a child that ends between the two reads is then left out, never
	// counted twice.
	root, err := readProcStat(pid)
	if err != nil {
		return 0, fmt.Errorf("database CPU: %w", err)
	}
	sum := root.cpu + root.children
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return 0, fmt.Errorf("database CPU: %w", err)
	}
	// Every process of a PostgreSQL (backends, auxiliaries, parallel workers) is its
	// postmaster's child.
	for _, e := range entries {
		child, err := strconv.Atoi(e.Name())
		if err != nil || child == pid {
			continue
		}
		st, err := readProcStat(child)
		if err != nil || st.ppid != pid {
			continue // ended meanwhile, or not the postmaster's
		}
		sum += st.cpu + st.children
	}
	return sum, nil
}

// findPostmaster returns the pid of the postmaster of the PostgreSQL at db, when it runs on this
// machine and its processes can be read; the error says why not. It asks the server for its
// backend's pid and confirms in /proc that the process of that pid serves this very connection:
// a PostgreSQL in a container answers with a pid of another namespace.
func findPostmaster(ctx context.Context, db string) (int, error) {
	cfg, err := pgxpool.ParseConfig(db) // takes the pool_ parameters a --db may carry
	if err != nil {
		return 0, fmt.Errorf("parse the database URL: %w", err)
	}
	cc := cfg.ConnConfig
	local := strings.HasPrefix(cc.Host, "/") || cc.Host == "localhost"
	if ip := net.ParseIP(cc.Host); ip != nil && ip.IsLoopback() {
		local = true
	}
	if !local {
		return 0, fmt.Errorf("PostgreSQL at %s is not on this machine", cc.Host)
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return 0, fmt.Errorf("connect: %w", err)
	}
	defer pool.Close()
	conn, err := pool.Acquire(ctx)
	if err != nil {
		return 0, fmt.Errorf("connect: %w", err)
	}
	defer conn.Release()
	var backend int
	if err := conn.QueryRow(ctx, "SELECT pg_backend_pid()").Scan(&backend); err != nil {
		return 0, fmt.Errorf("ask for the backend's pid: %w", err)
	}
	// A backend's title names its client: "postgres: … 127.0.0.1(54321) idle", "[local]" over
	// a socket.
	client := "[local]"
	if addr, ok := conn.Conn().PgConn().Conn().LocalAddr().(*net.TCPAddr); ok {
		client = "(" + strconv.Itoa(addr.Port) + ")"
	}
	title, err := os.ReadFile("/proc/" + strconv.Itoa(backend) + "/cmdline")
	if err != nil {
		return 0, fmt.Errorf("read the backend's process %d: %w", backend, err)
	}
	if !bytes.Contains(title, []byte(client)) {
		return 0, fmt.Errorf("process %d here is not this connection's backend (no %s in its title %q): PostgreSQL runs in another PID namespace, or with update_process_title off", backend, client, bytes.TrimRight(title, "\x00"))
	}
	st, err := readProcStat(backend)
	if err != nil {
		return 0, fmt.Errorf("read the backend's process: %w", err)
	}
	post, err := readProcStat(st.ppid)
	if err != nil {
		return 0, fmt.Errorf("read the postmaster's process: %w", err)
	}
	if st.comm != post.comm {
		return 0, fmt.Errorf("backend %d (%s) has parent %d (%s), not its postmaster", backend, st.comm, st.ppid, post.comm)
	}
	return st.ppid, nil
}
