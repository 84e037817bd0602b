package main

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/spf13/cobra"
)

func newClusterCmd(e *env) *cobra.Command {
	cf := new(clientFlags)
	cmd := groupCmd("cluster", "Show a running cluster's state, or make a node leave it")
	cmd.Long = `Talk to a running node's HTTP API about the cluster it belongs to.

The node is --addr (env TOKENCACHE_ADDR, default http://127.0.0.1:8080); these
are admin calls: --admin-token, else TOKENCACHE_ADMIN_TOKEN, else the file
<--data-dir>/admin.token.`
	pf := cmd.PersistentFlags()
	pf.StringVar(&cf.addr, "addr", "http://127.0.0.1:8080", "node HTTP address (env TOKENCACHE_ADDR)")
	pf.StringVar(&cf.adminToken, "admin-token", "", "admin token (env TOKENCACHE_ADMIN_TOKEN; default read from <data-dir>/admin.token)")
	pf.StringVar(&cf.dataDir, "data-dir", "./data", "node data directory holding admin.token")
	pf.DurationVar(&cf.timeout, "timeout", 10*time.Second, "timeout of the request")
	cmd.AddCommand(newClusterStatusCmd(e, cf), newClusterMembersCmd(e, cf), newClusterLeaveCmd(e, cf))
	return cmd
}

// clusterStatus fetches GET /v1/cluster.
func (c *client) clusterStatus(ctx context.Context) (object, error) {
	resp, err := c.do(ctx, http.MethodGet, "/v1/cluster", nil, nil, nil, true, http.StatusOK)
	if err != nil {
		return nil, err
	}
	return decodeObject(resp.body)
}

var clusterFieldOrder = []string{"node_id", "leader_id", "leader_http_addr", "term", "commit_index",
	"applied_index", "persisted_index", "replication"}

var memberColumns = []string{"id", "status", "suffrage", "http_addr", "raft_addr", "gossip_addr", "applied_index", "fingerprint_mismatch"}

func newClusterStatusCmd(e *env, cf *clientFlags) *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show the leader, term, indexes and replication target (exit 1 when there is no leader)",
		Args:  exactArgs(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			st, err := cf.client(e, cmd).clusterStatus(cmd.Context())
			if err != nil {
				return err
			}
			if output == outputJSON {
				if err := writeJSON(e.stdout, st); err != nil {
					return err
				}
			} else {
				summary := object{}
				for k, v := range st {
					if k != "members" {
						summary[k] = v
					}
				}
				if err := writeFields(e.stdout, summary, clusterFieldOrder); err != nil {
					return err
				}
			}
			if id, _ := st["leader_id"].(string); id == "" {
				fmt.Fprintln(e.stderr, "error: the cluster has no leader")
				return exitCodeError{code: exitError}
			}
			return nil
		},
	}
	addOutputFlag(cmd, &output, outputTable, outputTable, outputJSON)
	return cmd
}

func newClusterMembersCmd(e *env, cf *clientFlags) *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:   "members",
		Short: "List the members: status, vote, addresses and applied index",
		Args:  exactArgs(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			st, err := cf.client(e, cmd).clusterStatus(cmd.Context())
			if err != nil {
				return err
			}
			raw, _ := st["members"].([]any)
			members := make([]object, 0, len(raw))
			for _, m := range raw {
				if o, ok := m.(map[string]any); ok {
					members = append(members, object(o))
				}
			}
			if output == outputJSON {
				return writeJSON(e.stdout, members)
			}
			return writeTable(e.stdout, members, memberColumns)
		},
	}
	addOutputFlag(cmd, &output, outputTable, outputTable, outputJSON)
	return cmd
}

func newClusterLeaveCmd(e *env, cf *clientFlags) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "leave",
		Short: "Make the node at --addr leave the cluster for good (leadership is handed over first)",
		Long: `Make the node at --addr leave the cluster gracefully: if it leads, it hands
leadership over; it leaves gossip and is removed from the Raft configuration;
then the process shuts down (as consul leave does). To come back it must be
started with an empty data dir. The only server of a cluster cannot leave (409).`,
		Args: exactArgs(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			c := cf.client(e, cmd)
			if _, err := c.do(cmd.Context(), http.MethodPost, "/v1/cluster/leave", nil, nil, nil, true, http.StatusOK); err != nil {
				return err
			}
			fmt.Fprintln(e.stdout, "the node left the cluster")
			return nil
		},
	}
	return cmd
}
