/// A self-contained HTML page of line charts and a table, drawn like the benchmark report's
/// charts (labelled axes with units and ticks, a legend), for other commands' figures: the
/// cluster simulation's goodput against load, for one.
public struct LineChart: Sendable {
    public var title: String
    /// Each axis's title, with its unit.
    public var xAxis: String
    public var yAxis: String
    public var series: [(name: String, points: [(x: Double, y: Double)])]

    public init(title: String, xAxis: String, yAxis: String, series: [(name: String, points: [(x: Double, y: Double)])]) {
        self.title = title
        self.xAxis = xAxis
        self.yAxis = yAxis
        self.series = series
    }
}

public enum LineChartPage {
    /// The page: a heading, a paragraph, the charts, then `table` (its first row the header).
    public static func render(title: String, intro: String, charts: [LineChart], table: [[String]]) -> String {
        let svgCharts = charts.map { chart in
            let points = chart.series.flatMap(\.points)
            return SVGChart(
                title: chart.title, x: ChartAxis(chart.xAxis, values: points.map(\.x)), y: ChartAxis(chart.yAxis, values: points.map(\.y)),
                series: chart.series.map { SVGChart.Series(name: $0.name, points: $0.points, style: .lineWithDots) })
        }
        var body = "<h1>\(HTMLText.escape(title))</h1>\n<p>\(HTMLText.escape(intro))</p>\n" + HTMLReport.charts(svgCharts)
        if let header = table.first {
            body += "<table class=\"overview\"><tr>" + header.map { "<th>\(HTMLText.escape($0))</th>" }.joined() + "</tr>"
            for row in table.dropFirst() { body += "<tr>" + row.map { "<td>\(HTMLText.escape($0))</td>" }.joined() + "</tr>" }
            body += "</table>\n"
        }
        return HTMLReport.page(title: title, body: body)
    }
}
