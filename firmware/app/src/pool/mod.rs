//! Shared infrastructure of the services: the closing pool, where a
//! connection a service is done with finishes its close while the service's
//! socket listens again.

pub(crate) mod closing;
