mod report;
mod verdict;
