-- Each node's row: the settings that must agree across the cluster (a fingerprint of its token
-- secrets, never a secret; --location-from; …), as JSON, and when it last announced them, on the
-- database's clock. Nodes compare theirs with the others' seen lately and warn of a mismatch;
-- a node deletes its row on a clean shutdown, and a row long unseen (a node killed) is deleted
-- by the next node to announce itself. Old nodes of a rolling upgrade neither read nor write it.
CREATE TABLE cluster_nodes (
	node     text        PRIMARY KEY,
	seen_at  timestamptz NOT NULL,
	settings jsonb       NOT NULL
);
