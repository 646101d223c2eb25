//! Sound-card ingress (feature `soundcard`): placeholder, filled in below.
