-- One database per node: each node mirrors its own copy of the chain (docs/SYNC.md).
-- Run once, by the postgres image, when its data volume is first created.
CREATE DATABASE node1;
CREATE DATABASE node2;
CREATE DATABASE node3;
