//! The API over HTTP against a real PostgreSQL (and, for the document's gateway half, a real tansu):
//! one test binary, one deployment per test (see `helpers`).

mod access;
mod embedded;
mod helpers;
mod limits;
mod openapi;
mod reviews;
