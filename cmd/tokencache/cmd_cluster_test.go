package main

import (
	"encoding/json"
	"strings"
	"testing"
)

const clusterJSON = `{"node_id":"n1","leader_id":"n2","leader_http_addr":"127.0.0.1:8082","term":3,
"commit_index":40,"applied_index":40,"persisted_index":38,
"replication":{"count":1,"voters_target":3,"met":true},
"members":[{"id":"n1","http_addr":"127.0.0.1:8081","raft_addr":"127.0.0.1:8301","gossip_addr":"127.0.0.1:7947","suffrage":"voter","status":"alive","applied_index":40},
{"id":"n4","http_addr":"127.0.0.1:8084","raft_addr":"127.0.0.1:8304","gossip_addr":"127.0.0.1:7950","suffrage":"nonvoter","status":"dead","applied_index":12}]}`

func TestClusterCommands(t *testing.T) {
	api := newFakeAPI(t, map[string]reply{
		"GET /v1/cluster":        {200, clusterJSON},
		"POST /v1/cluster/leave": {200, `{}`},
	})
	env := []string{"TOKENCACHE_ADMIN_TOKEN=adm-secret-token-0001"}
	code, out, errOut := runCLI(t, env, "", "cluster", "status", "--addr", api.srv.URL)
	if code != exitOK || !strings.Contains(out, "leader_id") || !strings.Contains(out, "n2") || strings.Contains(out, "n4") {
		t.Errorf("cluster status = %d %q %q, want the summary without members", code, out, errOut)
	}
	code, out, _ = runCLI(t, env, "", "cluster", "members", "--addr", api.srv.URL)
	if code != exitOK || !strings.Contains(out, "NONVOTER") && !strings.Contains(out, "nonvoter") || !strings.Contains(out, "127.0.0.1:8304") {
		t.Errorf("cluster members = %d %q, want a table of both members", code, out)
	}
	code, out, _ = runCLI(t, env, "", "cluster", "members", "-o", "json", "--addr", api.srv.URL)
	var members []map[string]any
	if code != exitOK || json.Unmarshal([]byte(out), &members) != nil || len(members) != 2 {
		t.Errorf("cluster members -o json = %d %q, want a JSON array of 2", code, out)
	}
	if code, _, _ = runCLI(t, env, "", "cluster", "leave", "--addr", api.srv.URL); code != exitOK {
		t.Errorf("cluster leave = %d", code)
	}
	for _, r := range api.requests() {
		if r.Header.Get("Authorization") != "Bearer adm-secret-token-0001" {
			t.Errorf("%s %s sent no admin token", r.Method, r.Path)
		}
	}
	noLeader := newFakeAPI(t, map[string]reply{"GET /v1/cluster": {200, `{"node_id":"n1","leader_id":"","members":[]}`}})
	if code, _, errOut = runCLI(t, env, "", "cluster", "status", "--addr", noLeader.srv.URL); code != exitError || !strings.Contains(errOut, "no leader") {
		t.Errorf("cluster status without a leader = %d %q, want exit 1", code, errOut)
	}
}
