module github.com/nself-org/nself-analytics/sdk/go

go 1.19
