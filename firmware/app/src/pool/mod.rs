//! Shared infrastructure of the services: the closing pool, where a
//! connection a service is done with finishes its close while the service's
//! socket listens again (and a SYN for one of its TIME-WAIT four-tuples
//! frees that socket), and the TCP socket helpers every service uses.

pub(crate) mod closing;
pub(crate) mod reuse;
pub(crate) mod socket;
