"""Shard tools: validate shards nobody vouched for, migrate shards of an older schema."""
