//! The health / metrics / download HTTP server (placeholder; routes arrive with the JSON-RPC server issue).
