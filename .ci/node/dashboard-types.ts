// The type a provisioned dashboard JSON must satisfy: Grafana's published classic dashboard
// type (@grafana/schema), with the Prometheus/Loki query fields that the generic DataQuery
// leaves open spelled out, so a misspelled query key is still an error.
import type { AnnotationQuery, Dashboard, DataQuery, Panel, VariableModel } from "@grafana/schema";

export interface PromQuery extends DataQuery {
  expr: string;
  legendFormat?: string;
  interval?: string;
  instant?: boolean;
  range?: boolean;
  exemplar?: boolean;
  format?: "time_series" | "table" | "heatmap";
}

export interface LokiQuery extends DataQuery {
  expr: string;
  queryType?: "range" | "instant" | "stream";
  legendFormat?: string;
  maxLines?: number;
}

export type QueryPanel = Omit<Panel, "targets"> & { targets?: Array<PromQuery | LokiQuery> };

// Prometheus annotation options Grafana reads beside the query.
export interface PromAnnotation extends AnnotationQuery<PromQuery> {
  step?: string;
  titleFormat?: string;
  textFormat?: string;
  tagKeys?: string;
  useValueForTime?: boolean;
}

export interface QueryVariable extends VariableModel {
  definition?: string;
}

export type ProvisionedDashboard = Omit<Dashboard, "annotations" | "templating" | "panels"> & {
  panels?: QueryPanel[];
  annotations?: { list?: Array<AnnotationQuery | PromAnnotation> };
  templating?: { list?: QueryVariable[] };
};
