"""Stage 2: profile + secrets -> the files of a deployment (compose file, redis.conf, ACL file, secret files)."""
