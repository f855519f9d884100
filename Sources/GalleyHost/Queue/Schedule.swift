/// A function's `schedule` in EventBridge syntax: `rate(5 minutes)` or `cron(0 12 * * ? *)`,
/// always in UTC.
///
/// Cron has EventBridge's six fields, `minutes hours day-of-month month day-of-week year`. Each takes `*`, numbers, ranges `a-b`,
/// steps `*/n` or `a-b/n`, and lists `a,b`; months take `JAN`–`DEC` and days of week `SUN`–`SAT`
/// (1–7). One of day-of-month and day-of-week must be `?`. Day-of-month also takes `L` (the last
/// day); day-of-week takes `nL` (the last such weekday) and `n#k` (the k-th).
public struct Schedule: Sendable, Equatable, CustomStringConvertible {
    enum Kind: Sendable, Equatable {
        case rate(milliseconds: Int64)
        case cron(Cron)
    }

    /// The text as written in runtime.json.
    public let expression: String
    let kind: Kind

    public var description: String { expression }

    /// Parses an expression; the error says what is wrong, for runtime.json validation.
    public init(parsing expression: String) throws(ScheduleError) {
        self.expression = expression
        if expression.hasPrefix("rate("), expression.hasSuffix(")") {
            kind = .rate(milliseconds: try Self.parseRate(String(expression.dropFirst(5).dropLast())))
        } else if expression.hasPrefix("cron("), expression.hasSuffix(")") {
            let cron = try Cron(parsing: String(expression.dropFirst(5).dropLast()))
            guard cron.next(after: Timestamp.epochMilliseconds()) != nil else {
                throw ScheduleError(
                    "\(expression) can never fire: no date from now until 2199 matches its day, month and year"
                )
            }
            kind = .cron(cron)
        } else {
            throw ScheduleError(
                "'\(expression)' is not a schedule; write rate(5 minutes) or cron(0 12 * * ? *)"
            )
        }
    }

    private static func parseRate(_ text: String) throws(ScheduleError) -> Int64 {
        let parts = text.split(separator: " ")
        guard parts.count == 2, let value = Int64(parts[0]), value > 0, value <= 1_000_000 else {
            throw ScheduleError("rate(\(text)) needs a positive whole number and a unit, e.g. rate(5 minutes)")
        }
        let unit = parts[1]
        let minute: Int64 = 60_000
        let units: [Substring: Int64] = ["minute": minute, "hour": 60 * minute, "day": 1440 * minute]
        let singular = unit.hasSuffix("s") ? unit.dropLast() : unit
        guard let size = units[singular] else {
            throw ScheduleError("rate(\(text)): the unit must be minutes, hours or days")
        }
        // EventBridge's own rule: `1 minute`, `5 minutes`.
        guard (value == 1) == (singular == unit) else {
            throw ScheduleError("rate(\(text)): write \(value) \(value == 1 ? singular : singular + "s")")
        }
        return value * size
    }

    /// The first time after `milliseconds` (Unix epoch, UTC) when the schedule fires; for a
    /// rate, `anchor` is the time it last fired (or was first seen). `nil` when it never fires again.
    func next(after milliseconds: Int64, anchor: Int64) -> Int64? {
        switch kind {
        case .rate(let interval):
            guard milliseconds >= anchor else { return anchor + interval }
            return anchor + ((milliseconds - anchor) / interval + 1) * interval
        case .cron(let cron):
            return cron.next(after: milliseconds)
        }
    }
}

/// Why a schedule expression was refused.
public struct ScheduleError: Error, Sendable, CustomStringConvertible {
    public let message: String
    init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// A parsed EventBridge cron expression.
struct Cron: Sendable, Equatable {
    var minutes: Set<Int>
    var hours: Set<Int>
    var months: Set<Int>
    var years: Set<Int>
    var days: DayRule

    enum DayRule: Sendable, Equatable {
        /// Days of the month; `last` adds the month's last day.
        case monthDays(Set<Int>, last: Bool)
        /// Days of the week, 1 (Sunday) to 7; `lastOf` the last such day of the month; `nth` the
        /// k-th such day.
        case weekDays(Set<Int>, lastOf: Set<Int>, nth: [Int: Int])
    }

    static let monthNames = ["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"]
    static let dayNames = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"]

    init(parsing text: String) throws(ScheduleError) {
        let fields = text.split(separator: " ").map(String.init)
        guard fields.count == 6 else {
            throw ScheduleError(
                "cron(\(text)) needs six fields (minutes hours day-of-month month day-of-week year), found \(fields.count)"
            )
        }
        minutes = try Self.values(fields[0], "minutes", 0...59)
        hours = try Self.values(fields[1], "hours", 0...23)
        months = try Self.values(fields[3], "month", 1...12, names: Self.monthNames)
        years = try Self.values(fields[5], "year", 1970...2199)
        let (dayOfMonth, dayOfWeek) = (fields[2], fields[4])
        switch (dayOfMonth == "?", dayOfWeek == "?") {
        case (false, true):
            var text = dayOfMonth
            let last = text == "L" || text.hasSuffix(",L")
            if last { text = String(text.dropLast(text == "L" ? 1 : 2)) }
            days = .monthDays(text.isEmpty ? [] : try Self.values(text, "day-of-month", 1...31), last: last)
        case (true, false):
            var plain: [String] = []
            var lastOf: Set<Int> = []
            var nth: [Int: Int] = [:]
            for item in dayOfWeek.split(separator: ",").map(String.init) {
                if item.count > 1, item.hasSuffix("L") {
                    lastOf.formUnion(
                        try Self.values(String(item.dropLast()), "day-of-week", 1...7, names: Self.dayNames)
                    )
                } else if let hash = item.firstIndex(of: "#") {
                    let day = try Self.values(String(item[..<hash]), "day-of-week", 1...7, names: Self.dayNames)
                    guard day.count == 1, let k = Int(item[item.index(after: hash)...]), (1...5).contains(k) else {
                        throw ScheduleError("cron day-of-week '\(item)': write a day and 1 to 5, e.g. MON#2")
                    }
                    nth[day.first!] = k
                } else {
                    plain.append(item)
                }
            }
            let days =
                plain.isEmpty
                ? [] : try Self.values(plain.joined(separator: ","), "day-of-week", 1...7, names: Self.dayNames)
            self.days = .weekDays(days, lastOf: lastOf, nth: nth)
        default:
            throw ScheduleError(
                "cron(\(text)): exactly one of day-of-month and day-of-week must be '?', e.g. cron(0 12 * * ? *)"
            )
        }
    }

    /// The values of one field: `*`, `n`, `a-b`, `*/s`, `a/s`, `a-b/s`, and lists of those.
    private static func values(
        _ text: String,
        _ field: String,
        _ range: ClosedRange<Int>,
        names: [String] = []
    ) throws(ScheduleError) -> Set<Int> {
        func number(_ item: Substring) throws(ScheduleError) -> Int {
            if let index = names.firstIndex(of: item.uppercased()) { return index + range.lowerBound }
            guard let value = Int(item), range.contains(value) else {
                throw ScheduleError(
                    "cron \(field) '\(text)': '\(item)' is not between \(range.lowerBound) and \(range.upperBound)"
                )
            }
            return value
        }
        var result: Set<Int> = []
        for item in text.split(separator: ",", omittingEmptySubsequences: false) {
            let stepParts = item.split(separator: "/", omittingEmptySubsequences: false)
            guard (1...2).contains(stepParts.count) else {
                throw ScheduleError("cron \(field) '\(text)': '\(item)' has more than one '/'")
            }
            var step = 1
            if stepParts.count == 2 {
                guard let value = Int(stepParts[1]), value > 0 else {
                    throw ScheduleError("cron \(field) '\(text)': the step in '\(item)' must be a positive number")
                }
                step = value
            }
            let base = stepParts[0]
            let bounds: ClosedRange<Int>
            if base == "*" {
                bounds = range
            } else if let dash = base.firstIndex(of: "-") {
                let low = try number(base[..<dash])
                let high = try number(base[base.index(after: dash)...])
                guard low <= high else {
                    throw ScheduleError("cron \(field) '\(text)': the range '\(base)' runs backwards")
                }
                bounds = low...high
            } else {
                let value = try number(base)
                bounds = value...(stepParts.count == 2 ? range.upperBound : value)
            }
            result.formUnion(stride(from: bounds.lowerBound, through: bounds.upperBound, by: step))
        }
        return result
    }

    /// The first minute after `milliseconds` that matches, or `nil` past year 2199.
    func next(after milliseconds: Int64) -> Int64? {
        var minute = milliseconds / 60_000 + 1
        if milliseconds < 0 { minute = 0 }
        while true {
            var date = CivilDate(minute: minute)
            guard date.year <= 2199 else { return nil }
            if !years.contains(date.year) {
                date = CivilDate(year: date.year + 1, month: 1, day: 1)
            } else if !months.contains(date.month) {
                date =
                    date.month == 12
                    ? CivilDate(year: date.year + 1, month: 1, day: 1)
                    : CivilDate(year: date.year, month: date.month + 1, day: 1)
            } else if !dayMatches(date) {
                date = CivilDate(daysSinceEpoch: date.daysSinceEpoch + 1)
            } else if !hours.contains(date.hour) {
                minute = (minute / 60 + 1) * 60
                continue
            } else if !minutes.contains(date.minuteOfHour) {
                minute += 1
                continue
            } else {
                return minute * 60_000
            }
            minute = date.daysSinceEpoch * 1440
        }
    }

    private func dayMatches(_ date: CivilDate) -> Bool {
        switch days {
        case .monthDays(let days, let last):
            return days.contains(date.day) || (last && date.day == date.daysInMonth)
        case .weekDays(let days, let lastOf, let nth):
            let weekday = date.weekday
            return days.contains(weekday) || (lastOf.contains(weekday) && date.day + 7 > date.daysInMonth)
                || nth[weekday] == (date.day - 1) / 7 + 1
        }
    }
}

/// A UTC calendar date (and time of day, to the minute), by Howard Hinnant's days-from-civil.
struct CivilDate {
    var year: Int
    var month: Int
    var day: Int
    var hour = 0
    var minuteOfHour = 0

    init(year: Int, month: Int, day: Int) {
        self.year = year
        self.month = month
        self.day = day
    }

    init(daysSinceEpoch days: Int64) {
        let z = days + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let dayOfEra = z - era * 146_097
        let yearOfEra = (dayOfEra - dayOfEra / 1460 + dayOfEra / 36524 - dayOfEra / 146_096) / 365
        let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)
        let shiftedMonth = (5 * dayOfYear + 2) / 153
        day = Int(dayOfYear - (153 * shiftedMonth + 2) / 5 + 1)
        month = Int(shiftedMonth < 10 ? shiftedMonth + 3 : shiftedMonth - 9)
        year = Int(yearOfEra + era * 400) + (month <= 2 ? 1 : 0)
    }

    init(minute: Int64) {
        let days = minute >= 0 ? minute / 1440 : (minute - 1439) / 1440
        self.init(daysSinceEpoch: days)
        let rest = Int(minute - days * 1440)
        hour = rest / 60
        minuteOfHour = rest % 60
    }

    var daysSinceEpoch: Int64 {
        let y = Int64(month <= 2 ? year - 1 : year)
        let era = (y >= 0 ? y : y - 399) / 400
        let yearOfEra = y - era * 400
        let m = Int64(month)
        let dayOfYear = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + Int64(day) - 1
        let dayOfEra = yearOfEra * 365 + yearOfEra / 4 - yearOfEra / 100 + dayOfYear
        return era * 146_097 + dayOfEra - 719_468
    }

    /// 1 (Sunday) to 7 (Saturday), as in EventBridge; 1970-01-01 was a Thursday.
    var weekday: Int {
        Int(((daysSinceEpoch + 4) % 7 + 7) % 7) + 1
    }

    var daysInMonth: Int {
        switch month {
        case 2: (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 ? 29 : 28
        case 4, 6, 9, 11: 30
        default: 31
        }
    }
}
