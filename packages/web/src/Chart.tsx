/**
 * One time series chart drawn by uPlot on a canvas: lines named by their
 * labels, values in the chart's unit on the axis and in the legend, the
 * width following its box.
 */
import { useEffect, useRef } from "react";
import uPlot from "uplot";
import "uplot/dist/uPlot.min.css";
import type { ChartUnit } from "@townos/api/monitoring-queries";
import { formatValue, type ChartData } from "./monitoring.js";

const HEIGHT = 200;

/** Distinct on light and dark backgrounds, in the order series get them. */
const COLOURS = ["#2f6fdf", "#d9480f", "#2b8a3e", "#ae3ec9", "#e8590c", "#0c8599", "#c2255c"];

/** Amounts start at zero; a ratio shows at least 0–100 %. */
function yRange(unit: ChartUnit): uPlot.Range.Function {
  return (_plot, _min, max) => [0, unit === "ratio" ? Math.max(1, max) : max > 0 ? max * 1.1 : 1];
}

export function Chart({ title, unit, data }: { title: string; unit: ChartUnit; data: ChartData }) {
  const box = useRef<HTMLDivElement>(null);
  useEffect(() => {
    const element = box.current;
    if (!element) return;
    const format = (value: number | null): string =>
      value === null ? "–" : formatValue(value, unit);
    const plot = new uPlot(
      {
        width: element.clientWidth || 480,
        height: HEIGHT,
        series: [
          {},
          ...data.names.map((name, index) => ({
            label: name,
            stroke: COLOURS[index % COLOURS.length] ?? "#2f6fdf",
            width: 1.5,
            // uPlot passes null where a series has no point.
            value: (_plot: uPlot, value: number | null) => format(value),
          })),
        ],
        scales: { x: { time: true, range: data.span }, y: { range: yRange(unit) } },
        axes: [{}, { size: 80, values: (_plot, ticks) => ticks.map((tick) => format(tick)) }],
      },
      data.columns,
      element,
    );
    const observer = new ResizeObserver(() => {
      plot.setSize({ width: element.clientWidth, height: HEIGHT });
    });
    observer.observe(element);
    return () => {
      observer.disconnect();
      plot.destroy();
    };
  }, [data, unit]);
  return <div ref={box} className="chart" role="img" aria-label={title} />;
}
