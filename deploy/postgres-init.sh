#!/bin/sh
# Run once by the postgres image, when its volume is created (/docker-entrypoint-initdb.d): the login
# role the API connects as, a member of `hoctap_api`. `hoctap_api` is the deployment's API role
# (`Deployment::api_role`, crates/hoctap-store): the projector grants it SELECT on the control schema
# and on the serving generation (again at every rebuild's switch), nothing else. So the API can read
# the read models and cannot write them, nor read anything else in the database.
set -eu
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
    -v password="$HOCTAP_API_DB_PASSWORD" <<'SQL'
CREATE ROLE hoctap_api NOLOGIN;
CREATE ROLE hoctap_api_login LOGIN PASSWORD :'password' IN ROLE hoctap_api;
SQL
