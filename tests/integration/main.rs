
mod scheduler;
